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
import json
import os

import h5py
import numpy as np

from ..backend import to_numpy
from ..errors import WeightsError
from ..files import atomic_write
from ..network import Layer, Network

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
    """Write ``net`` to ``path`` atomically (see minicnn.files: never half-written)."""
    notop = not any(layer.kind == "linear" for layer in net.layers)
    with atomic_write(path, suffix=".h5") as tmp:
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
