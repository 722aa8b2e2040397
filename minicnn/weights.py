"""minicnn's weight file: one HDF5 file per model, validated when loaded.

Layout (format version 1):

    /                       attributes: format = "minicnn-weights", format_version = 1,
                            architecture ("vgg19" or "custom"), layers (JSON: name, kind and
                            settings of every layer, in order), input_shape [C, H, W],
                            source (where the numbers came from), preprocessing (JSON, see
                            minicnn.images), notop (true for a convolutions-only file)
    /class_names            UTF-8 strings, one per output class (absent for notop files)
    /<layer>/weight         float32, conv OIHW (F, C, KH, KW), linear (out, in)
    /<layer>/bias           float32

Loading checks every name, shape and dtype and stops at the first problem with a message that
says what is wrong and what to do (``WeightsError``).
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

import h5py
import numpy as np

from .errors import WeightsError
from .network import Layer, Network

FORMAT = "minicnn-weights"
FORMAT_VERSION = 1


def layer_spec(net):
    """JSON-able description of the layers (everything but the parameter values)."""
    spec = []
    for layer in net.layers:
        entry = {"name": layer.name, "kind": layer.kind}
        if layer.kind == "conv":
            entry.update(stride=layer.stride, pad=layer.pad, shape=list(layer.w.shape))
        elif layer.kind == "pool":
            entry.update(kernel=layer.kernel, stride=layer.stride)
        elif layer.kind == "linear":
            entry.update(shape=list(layer.w.shape))
        spec.append(entry)
    return spec


def save_network(net, path, source, preprocessing, class_names=None):
    """Write ``net`` to ``path`` atomically (a temp file renamed into place: never half-written)."""
    from .backend import to_numpy
    notop = not any(layer.kind == "linear" for layer in net.layers)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".h5.part", dir=folder)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["architecture"] = net.meta.get("architecture", "custom")
            f.attrs["layers"] = json.dumps(layer_spec(net))
            f.attrs["input_shape"] = list(net.input_shape)
            f.attrs["source"] = source
            f.attrs["preprocessing"] = json.dumps(preprocessing)
            f.attrs["notop"] = notop
            if class_names is not None and not notop:
                f.create_dataset("class_names", data=np.array(class_names, dtype=h5py.string_dtype()))
            for name, layer in net.params():
                f.create_dataset(f"{name}/weight", data=to_numpy(layer.w).astype(np.float32))
                f.create_dataset(f"{name}/bias", data=to_numpy(layer.b).astype(np.float32))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it normal permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _attr(f, key, path):
    if key not in f.attrs:
        raise WeightsError(f"{path}: not a minicnn weight file (no '{key}' attribute); "
                           "convert framework files with: python -m minicnn.weights convert FILE")
    value = f.attrs[key]
    return value.decode() if isinstance(value, bytes) else value


def load_network(path, expected_layers=None):
    """Read a minicnn weight file into a Network (float32, on the CPU).

    ``expected_layers``: a layer spec (as ``layer_spec``) the file must match, e.g. VGG19's;
    without it the file's own spec is used. Raises WeightsError on the first problem.
    """
    if not os.path.exists(path):
        raise WeightsError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: not a readable HDF5 file ({e.__class__.__name__}); "
                           "is it truncated or not a weight file?") from None
    with f:
        if _attr(f, "format", path) != FORMAT:
            raise WeightsError(f"{path}: format is {_attr(f, 'format', path)!r}, not {FORMAT!r}")
        version = int(_attr(f, "format_version", path))
        if version > FORMAT_VERSION:
            raise WeightsError(f"{path}: format version {version} is newer than this minicnn "
                               f"reads ({FORMAT_VERSION}); upgrade minicnn")
        try:
            spec = json.loads(_attr(f, "layers", path))
            preprocessing = json.loads(_attr(f, "preprocessing", path))
        except json.JSONDecodeError:
            raise WeightsError(f"{path}: corrupt 'layers' or 'preprocessing' attribute") from None
        if expected_layers is not None:
            _check_spec(spec, expected_layers, path)
        layers = []
        for entry in spec:
            name, kind = entry["name"], entry["kind"]
            if kind in ("conv", "linear"):
                w, b = _read_param(f, name, "weight", tuple(entry["shape"]), path), None
                b = _read_param(f, name, "bias", (entry["shape"][0],), path)
                layers.append(Layer(name, kind, w=w, b=b, stride=entry.get("stride", 1), pad=entry.get("pad", 0)))
            elif kind == "pool":
                layers.append(Layer(name, kind, kernel=entry["kernel"], stride=entry["stride"]))
            else:
                layers.append(Layer(name, kind))
        class_names = None
        if "class_names" in f:
            class_names = [c.decode() if isinstance(c, bytes) else str(c) for c in f["class_names"][()]]
        meta = {"architecture": _attr(f, "architecture", path), "source": _attr(f, "source", path),
                "preprocessing": preprocessing, "notop": bool(f.attrs.get("notop", False)), "path": path}
        input_shape = tuple(int(s) for s in f.attrs["input_shape"])
    last_linear = [layer for layer in layers if layer.kind == "linear"]
    if class_names is not None and last_linear and len(class_names) != last_linear[-1].w.shape[0]:
        raise WeightsError(f"{path}: {len(class_names)} class names for "
                           f"{last_linear[-1].w.shape[0]} outputs")
    return Network(layers, input_shape=input_shape, class_names=class_names, meta=meta)


def _read_param(f, name, which, shape, path):
    key = f"{name}/{which}"
    if key not in f:
        raise WeightsError(f"{path}: missing dataset '{key}'; the file is incomplete or for "
                           "another architecture (re-convert it)")
    data = f[key]
    if data.shape != shape:
        raise WeightsError(f"{path}: '{key}' has shape {data.shape}, expected {shape}; "
                           "the file is for another architecture or was converted wrongly")
    if data.dtype.kind != "f":
        raise WeightsError(f"{path}: '{key}' has dtype {data.dtype}, expected float32")
    array = data[()].astype(np.float32, copy=False)  # one copy in memory, read straight in
    if not np.isfinite(array).all():
        raise WeightsError(f"{path}: '{key}' contains NaN or infinite values")
    return array


def _check_spec(spec, expected, path):
    for i, want in enumerate(expected):
        if i >= len(spec):
            raise WeightsError(f"{path}: layer '{want['name']}' is missing (the file stops after "
                               f"'{spec[-1]['name'] if spec else 'nothing'}')")
        got = spec[i]
        if got != want:
            raise WeightsError(f"{path}: layer {i} is {got}, expected {want}")
    if len(spec) > len(expected):
        raise WeightsError(f"{path}: unexpected extra layer '{spec[len(expected)]['name']}'")


# ------------------------------------------------------------------------------------------------
# The shipped model


def shipped_path(name):
    """Path of a file shipped in weights/ (checkout) or minicnn/shipped/ (installed package)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (os.path.join(here, "shipped"), os.path.join(os.path.dirname(here), "weights")):
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    raise WeightsError(f"shipped file {name!r} not found next to the minicnn package; "
                       "reinstall minicnn")


def load_model(model="world", weights=None, quiet=False):
    """The network for a ``--model`` / ``--weights`` pair of command-line options.

    ``weights`` (a path to a minicnn weight file) wins over ``model``. ``model`` is a built-in
    model shipped with minicnn ("world", the default, or "shapes"; see minicnn.models) or
    "vgg19" (the converted ImageNet weights).
    """
    from .models import MODELS
    if weights is not None:
        return load_network(weights)
    if model in MODELS:
        return load_network(shipped_path(MODELS[model].file))
    if model == "vgg19":
        return load_vgg19(quiet=quiet)
    raise WeightsError(f"unknown model {model!r}: use {', '.join(repr(m) for m in MODELS)}, "
                       "'vgg19' or --weights FILE")


def require_classifier(net):
    """Raise a clear WeightsError if ``net`` has no class scores (a --notop file)."""
    if net.class_names is None or not any(layer.kind == "linear" for layer in net.layers):
        where = net.meta.get("path", "this model")
        raise WeightsError(f"{where} has no classifier layers (a notop file): it can be used for "
                           "feature visualization of conv layers, not for class scores")


# ------------------------------------------------------------------------------------------------
# Known sources of VGG19 weights, downloads and the cache
#
# Facts (URLs, sizes, checksums) from keras-applications' vgg19.py and torchvision's vgg.py; the
# Keras hashes are MD5 (32 hex digits, as Keras' get_file treats them), torchvision's file name
# carries the first 8 hex digits of its SHA-256, whose full value is checked here.

SOURCES = {
    ("keras", False): dict(
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        size=574710816, md5="cbe5617147190e668d6c5d5026f83318"),
    ("keras", True): dict(
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        size=80134624, md5="253f8cb515780f3b799900260a226db6"),
    ("torchvision", False): dict(
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        size=574673361, sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"),
}
DEFAULT_SOURCE = "keras"   # Oxford's original VGG19 (converted from Caffe by Keras)


def cache_dir():
    """$MINICNN_HOME, else $XDG_CACHE_HOME/minicnn, else ~/.cache/minicnn."""
    if os.environ.get("MINICNN_HOME"):
        return os.environ["MINICNN_HOME"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minicnn")


def cached_name(source, notop):
    return f"vgg19-{source}{'-notop' if notop else ''}.h5"


def _writable_dir(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create the cache folder {folder} ({e.strerror}); "
                           "set MINICNN_HOME to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise WeightsError(f"the cache folder {folder} is not writable; "
                           "set MINICNN_HOME to a writable folder")


def download(url, dest, size=None, md5=None, sha256=None, quiet=False, timeout=60, convert_to=None):
    """Fetch ``url`` into ``dest`` via a temp file: checked (size, checksum), then renamed.

    A failure at any point (network, short read, checksum mismatch) deletes the temp file, so
    a partial download never looks like a finished one.
    """
    from tqdm import tqdm
    folder = os.path.dirname(os.path.abspath(dest))
    _writable_dir(folder)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".part", dir=folder)
    hasher = hashlib.md5() if md5 else hashlib.sha256()
    expected = md5 or sha256
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                target = f" -o {convert_to}" if convert_to else ""
                raise WeightsError(f"cannot download {url} ({reason}); download it by hand and "
                                   f"run: python -m minicnn.weights convert FILE{target}") from None
            with response:
                announced = int(response.headers.get("Content-Length") or 0) or None
                total = size or announced
                got = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest),
                          disable=quiet or not sys.stderr.isatty(), file=sys.stderr) as bar:
                    while True:
                        try:
                            chunk = response.read(1 << 20)
                        except (OSError, ValueError) as e:
                            raise WeightsError(f"download of {url} broke off after {got} bytes "
                                               f"({e.__class__.__name__}); try again") from None
                        if not chunk:
                            break
                        out.write(chunk)
                        hasher.update(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
        if total is not None and got != total:
            raise WeightsError(f"download of {url} is incomplete: {got} of {total} bytes; try again")
        if expected and hasher.hexdigest() != expected.lower():
            raise WeightsError(f"checksum mismatch for {url}: got {hasher.hexdigest()}, expected "
                               f"{expected}; the partial file was deleted")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def fetch_vgg19(source=DEFAULT_SOURCE, notop=False, url=None, sha256=None, md5=None, quiet=False):
    """Download (if not cached), verify and convert VGG19; returns the converted file's path."""
    from .convert import convert
    if (source, notop) not in SOURCES:
        raise WeightsError(f"no {'notop ' if notop else ''}VGG19 file from {source}; "
                           f"known: keras, keras --notop, torchvision")
    folder = cache_dir()
    final = os.path.join(folder, cached_name(source, notop))
    if os.path.exists(final):
        return final
    known = SOURCES[(source, notop)]
    if url is None:
        url, size, md5, sha256 = known["url"], known["size"], known.get("md5"), known.get("sha256")
    else:
        size = None  # a mirror or another copy: checked by the hash given with it
    if not quiet:
        mb = f"{size / 1e6:.0f} MB" if size else "size unknown"
        print(f"downloading VGG19 weights ({source}{', notop' if notop else ''}, {mb}) "
              f"from {url} into {folder}", file=sys.stderr)
    _writable_dir(folder)
    raw = os.path.join(folder, os.path.basename(url.split("?")[0]) or "download")
    download(url, raw, size=size, md5=md5, sha256=sha256, quiet=quiet, convert_to=final)
    try:
        if not quiet:
            print("converting to minicnn's format ...", file=sys.stderr)
        convert(raw, final, source_note=f"{url} (converted by minicnn)")
    finally:
        os.remove(raw)  # the converted file holds the same numbers; keep one copy on disk
    return final


def load_vgg19(source=None, notop=False, download_ok=True, quiet=False):
    """VGG19 with ImageNet weights: a cached converted file, else downloaded on first use."""
    sources = [source] if source else ["keras", "torchvision"]
    for s in sources:
        path = os.path.join(cache_dir(), cached_name(s, notop))
        if os.path.exists(path):
            return load_network(path, expected_layers=_vgg19_spec(notop))
    if not download_ok:
        raise WeightsError(f"VGG19 weights are not in {cache_dir()}: run "
                           "python -m minicnn.weights download vgg19")
    path = fetch_vgg19(source or DEFAULT_SOURCE, notop=notop, quiet=quiet)
    return load_network(path, expected_layers=_vgg19_spec(notop))


def _vgg19_spec(notop):
    from .vgg19 import vgg19
    return layer_spec(vgg19(init=False, notop=notop))


# ------------------------------------------------------------------------------------------------
# python -m minicnn.weights


def _info(args):
    from .vgg19 import aliases, vgg19
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.weights",
                                     description="download, convert and inspect weight files")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch, verify and convert VGG19 into the cache")
    d.add_argument("model", choices=["vgg19"])
    d.add_argument("--source", choices=["keras", "torchvision"], default=DEFAULT_SOURCE)
    d.add_argument("--notop", action="store_true", help="convolutions only (Keras, 80 MB)")
    d.add_argument("--url", help="download from a mirror instead (give --sha256 or --md5 with it)")
    d.add_argument("--sha256", help="expected SHA-256 of the file at --url")
    d.add_argument("--md5", help="expected MD5 of the file at --url")
    d.add_argument("--quiet", action="store_true")
    c = sub.add_parser("convert", help="convert a Keras .h5 or PyTorch .pth file you have")
    c.add_argument("src")
    c.add_argument("-o", "--output", help="output file (default: SRC with .minicnn.h5)")
    i = sub.add_parser("info", help="list the layers with output shapes and receptive fields")
    from .models import DEFAULT, MODELS
    i.add_argument("--model", choices=list(MODELS) + ["vgg19"], default=DEFAULT,
                   help=f"a built-in model (default {DEFAULT}, like every command) or vgg19 (its shapes "
                        "need no download)")
    i.add_argument("--notop", action="store_true")
    i.add_argument("--weights", metavar="FILE")
    args = parser.parse_args(argv)
    try:
        if args.command == "download":
            if args.url and not (args.sha256 or args.md5):
                raise WeightsError("--url needs --sha256 (or --md5) so the download can be verified")
            path = fetch_vgg19(args.source, args.notop, url=args.url, sha256=args.sha256,
                               md5=args.md5, quiet=args.quiet)
            print(path)
        elif args.command == "convert":
            from .convert import convert
            dst = args.output or os.path.splitext(args.src)[0] + ".minicnn.h5"
            net = convert(args.src, dst)
            print(f"wrote {dst} ({net.meta['architecture']}, "
                  f"{sum(layer.w.size + layer.b.size for _, layer in net.params()):,d} parameters)")
        else:
            _info(args)
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
