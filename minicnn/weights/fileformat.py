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

Loading checks everything it reads (minicnn/weights/validate.py: names, structure, sizes,
values, HDF5 storage) and stops at the first problem with a message that says what is wrong
and what to do (``WeightsError``).
"""
import io
import json

import h5py
import numpy as np

from ..backend import to_numpy
from ..errors import WeightsError
from ..files import atomic_write, regular_file
from ..network import Layer, Network
from .validate import (check_array, check_class_names, check_input_shape, check_network, check_preprocessing,
                       check_spec, hdf5_object, layer_spec, read_dataset, read_values)

FORMAT = "minicnn-weights"
FORMAT_VERSION = 1


def save_network(net, path, source, preprocessing, class_names=None, check=True):
    """Write ``net`` to ``path`` atomically (see minicnn.files: never half-written).

    The network is validated first (minicnn.weights.validate), and the HDF5 file is built in
    memory and written in one piece: a full disk is then an ordinary write error, never a
    crash inside the HDF5 library with a half-written file. ``check=False``: the caller has
    just validated ``net`` itself (a converter, naming its source file)."""
    if check:
        check_network(net, path)
    check_preprocessing(preprocessing, path)
    notop = not any(layer.kind == "linear" for layer in net.layers)
    with h5py.File(io.BytesIO(), "w") as f:
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
        f.flush()
        image = f.id.get_file_image()
    with atomic_write(path, suffix=".h5") as tmp:
        with open(tmp, "wb") as out:
            out.write(image)


def _attr(f, key, path):
    if key not in f.attrs:
        raise WeightsError(f"{path}: not a minicnn weight file (no '{key}' attribute); "
                           "convert framework files with: python -m minicnn.weights convert FILE")
    try:
        value = f.attrs[key]
    except (OSError, RuntimeError, ValueError, TypeError):
        raise WeightsError(f"{path}: attribute '{key}' cannot be read") from None
    return value.decode() if isinstance(value, bytes) else value


def _json_attr(f, key, path):
    try:
        return json.loads(_attr(f, key, path))
    except (json.JSONDecodeError, TypeError, RecursionError):
        raise WeightsError(f"{path}: corrupt '{key}' attribute (not JSON)") from None


def load_network(path, expected_layers=None):
    """Read a minicnn weight file into a Network (float32, on the CPU, frozen: its weights are
    read-only until ``net.unfreeze()``; ``training.train`` unfreezes).

    ``expected_layers``: a layer spec (as ``layer_spec``) the file must match, e.g. VGG19's;
    without it the file's own spec is used. Everything read is validated
    (minicnn.weights.validate); raises WeightsError on the first problem.
    """
    regular_file(path, WeightsError, "a weight file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: not a readable HDF5 file ({e.__class__.__name__}); "
                           "is it truncated or not a weight file?") from None
    with f:
        if _attr(f, "format", path) != FORMAT:
            raise WeightsError(f"{path}: format is {str(_attr(f, 'format', path))[:40]!r}, not {FORMAT!r}")
        try:
            version = int(_attr(f, "format_version", path))
        except (TypeError, ValueError):
            raise WeightsError(f"{path}: bad format_version") from None
        if version > FORMAT_VERSION:
            raise WeightsError(f"{path}: format version {version} is newer than this minicnn "
                               f"reads ({FORMAT_VERSION}); upgrade minicnn")
        spec = _json_attr(f, "layers", path)
        preprocessing = check_preprocessing(_json_attr(f, "preprocessing", path), path)
        input_shape = check_input_shape(_attr(f, "input_shape", path), path)
        check_spec(spec, input_shape, path)
        if expected_layers is not None:
            _check_spec(spec, expected_layers, path)
        layers = []
        for entry in spec:
            name, kind = entry["name"], entry["kind"]
            if kind in ("conv", "linear"):
                w = _read_param(f, name, "weight", tuple(entry["shape"]), path)
                b = _read_param(f, name, "bias", (entry["shape"][0],), path)
                layers.append(Layer(name, kind, w=w, b=b, stride=entry.get("stride", 1), pad=entry.get("pad", 0)))
            elif kind == "pool":
                layers.append(Layer(name, kind, kernel=entry["kernel"], stride=entry["stride"]))
            else:
                layers.append(Layer(name, kind))
        outputs = [entry["shape"][0] for entry in spec if entry["kind"] == "linear"]
        class_names = None
        if "class_names" in f:
            raw = read_dataset(f, "class_names", path, max_values=100_000)
            try:
                class_names = [c.decode("utf-8") if isinstance(c, bytes) else str(c) for c in np.ravel(raw)]
            except UnicodeDecodeError:
                raise WeightsError(f"{path}: class names are not UTF-8 text") from None
            check_class_names(class_names, outputs[-1] if outputs else 0, path)
        meta = {"architecture": str(_attr(f, "architecture", path))[:40], "source": str(_attr(f, "source", path)),
                "preprocessing": preprocessing, "notop": bool(f.attrs.get("notop", False)), "path": path}
    # frozen: read-only weights, whose Winograd filter transforms are kept once reused (Network.freeze)
    return Network(layers, input_shape=input_shape, class_names=class_names, meta=meta).freeze()


def _read_param(f, name, which, shape, path):
    key = f"{name}/{which}"
    if key not in f:
        raise WeightsError(f"{path}: missing dataset '{key}'; the file is incomplete or for "
                           "another architecture (re-convert it)")
    dataset = hdf5_object(f, key, path)
    if not isinstance(dataset, h5py.Dataset) or dataset.shape != shape:
        raise WeightsError(f"{path}: '{key}' has shape {getattr(dataset, 'shape', None)}, expected {shape}; "
                           "the file is for another architecture or was converted wrongly")
    if dataset.dtype.kind != "f":
        raise WeightsError(f"{path}: '{key}' has dtype {dataset.dtype}, expected float32")
    return check_array(read_values(dataset, key, path), shape, path, key)


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
