"""``python -m minicnn.weights download | convert | info``: fetch, convert and inspect weight files.

    python -m minicnn.weights download vgg19                 # Keras' VGG19, verified, converted
    python -m minicnn.weights convert vgg19-dcbb9e9d.pth     # a file you already have
    python -m minicnn.weights info --model vgg19             # layers, shapes, receptive fields
"""
import json
import os
import sys

from ..cli import ArgumentParser, main_wrapper
from . import DEFAULT_SOURCE, convert, fetch_vgg19, load_model, load_network
from ..errors import WeightsError


def _log(message):
    print(message, file=sys.stderr)


def _info(args):
    from ..vgg19 import aliases, vgg19
    if args.weights:
        net = load_network(args.weights)
    elif args.model != "vgg19":
        net = load_model(args.model)
    else:
        net = vgg19(init=False, notop=args.notop)
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


@main_wrapper
def main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.weights",
                                     description="download, convert and inspect weight files")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch, verify and convert VGG19 into the cache")
    d.add_argument("model", choices=["vgg19"])
    d.add_argument("--source", choices=["keras", "torchvision"], default=DEFAULT_SOURCE)
    d.add_argument("--notop", action="store_true", help="convolutions only (Keras, 80 MB)")
    d.add_argument("--url", help="download from a mirror instead (give --sha256 or --md5 with it)")
    d.add_argument("--sha256", help="expected SHA-256 of the file at --url")
    d.add_argument("--md5", help="expected MD5 of the file at --url")
    d.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    c = sub.add_parser("convert", help="convert a Keras .h5 or PyTorch .pth file you have")
    c.add_argument("src")
    c.add_argument("-o", "--output", help="output file (default: SRC with .minicnn.h5)")
    i = sub.add_parser("info", help="list the layers with output shapes and receptive fields")
    from ..models import DEFAULT, MODELS
    i.add_argument("--model", choices=list(MODELS) + ["vgg19"], default=DEFAULT,
                   help=f"a built-in model (default {DEFAULT}, like every command) or vgg19 (its shapes "
                        "need no download)")
    i.add_argument("--notop", action="store_true")
    i.add_argument("--weights", metavar="FILE")
    args = parser.parse_args(argv)
    if args.command == "download":
        if args.url and not (args.sha256 or args.md5):
            raise WeightsError("--url needs --sha256 (or --md5) so the download can be verified")
        path = fetch_vgg19(args.source, args.notop, url=args.url, sha256=args.sha256,
                           md5=args.md5, quiet=args.quiet, log=None if args.quiet else _log)
        print(path)
    elif args.command == "convert":
        dst = args.output or os.path.splitext(args.src)[0] + ".minicnn.h5"
        net = convert(args.src, dst)
        print(f"wrote {dst} ({net.meta['architecture']}, "
              f"{sum(layer.w.size + layer.b.size for _, layer in net.params()):,d} parameters)")
    else:
        _info(args)


if __name__ == "__main__":
    main()
