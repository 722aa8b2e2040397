"""One validator for weight files: everything read from a file is a stranger's data.

Every loader (``load_network``) and every converter (``convert``) passes what it read through
these checks before a Network is built or a file is written, and each failure is a
``WeightsError`` that names the file and the problem:

* **Names.** Layer names match ``NAME`` (letters, digits, ``_ . -``; at most 64 characters),
  so a name can go into a file name (``conv3_1_curves.png``) and onto a terminal unchanged;
  names are unique. Class names are printable text (no escape sequences), at most 200
  characters, one per output.
* **Structure.** Known kinds only; every setting present and an integer in range; shapes
  chained through the network (each conv's input channels are the previous output's, the
  first linear layer takes the flattened map, every map stays at least 1x1).
* **Sizes, before anything is allocated.** At most ``MAX_PARAMS`` parameters (VGG19 has
  143.7 million) and ``MAX_ACTIVATIONS`` activation values per image, computed from the shapes
  alone; input images at most ``MAX_SIDE`` pixels a side.
* **Values.** Floating-point arrays of exactly the declared shape, finite after conversion to
  float32 (a float16 infinity or a float64 1e300 is refused); preprocessing with a known
  channel order, finite scale, mean and std, std > 0.
* **HDF5 storage.** Only hard links inside the file and datasets whose bytes are in the file:
  no external links, soft links (and so no link loops), external raw storage or virtual
  datasets, any of which could make a "weight" read another file on this machine.
"""
import math
import re

import h5py
import numpy as np

from ..errors import WeightsError
from ..layers import conv_output_size, pool_output_size
from ..network import KINDS

class ConvertError(WeightsError):
    """A file that cannot be converted; the message is one line for the user."""


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_LAYERS = 512
MAX_PARAMS = 200_000_000
MAX_ACTIVATIONS = 100_000_000
MAX_SIDE = 1024
MAX_KERNEL = 15
MAX_STRIDE = 16
MAX_CLASS_NAME = 200


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


def check_name(name, where, what="layer name"):
    """A name that is safe in a file name and on a terminal, or WeightsError."""
    if not isinstance(name, str) or not NAME.match(name):
        shown = repr(name)[:80]
        raise WeightsError(f"{where}: {what} {shown} is not allowed (letters, digits, _ . - only, "
                           "at most 64 characters)")
    return name


def check_class_names(names, outputs, where):
    if len(names) != outputs:
        raise WeightsError(f"{where}: {len(names)} class names for {outputs} outputs")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_CLASS_NAME or not name.isprintable():
            raise WeightsError(f"{where}: class name {i} ({repr(name)[:60]}) is not printable text of "
                               f"1 to {MAX_CLASS_NAME} characters")
    return names


def _int(entry, key, lo, hi, where):
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise WeightsError(f"{where}: layer {entry.get('name')!r}: '{key}' must be an integer from {lo} "
                           f"to {hi}, not {value!r}")
    return value


def _shape(entry, rank, where):
    shape = entry.get("shape")
    if not isinstance(shape, list) or len(shape) != rank or \
            any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise WeightsError(f"{where}: layer {entry.get('name')!r}: 'shape' must be {rank} positive "
                           f"integers, not {shape!r}")
    return shape


def check_input_shape(input_shape, where):
    shape = list(input_shape) if isinstance(input_shape, (list, tuple, np.ndarray)) else None
    if shape is None or len(shape) != 3 or any(not float(s).is_integer() for s in shape) \
            or not 1 <= int(shape[0]) <= 64 or not all(1 <= int(s) <= MAX_SIDE for s in shape[1:]):
        raise WeightsError(f"{where}: input_shape must be [C, H, W] with C at most 64 and H, W from "
                           f"1 to {MAX_SIDE}, not {input_shape!r}")
    return tuple(int(s) for s in shape)


def check_spec(spec, input_shape, where):
    """Check a layer spec (as ``fileformat.layer_spec`` writes it) against an input shape:
    names, kinds, settings, chained shapes and total sizes. Returns the parameter count."""
    if not isinstance(spec, list) or not 1 <= len(spec) <= MAX_LAYERS:
        raise WeightsError(f"{where}: 'layers' must be a list of 1 to {MAX_LAYERS} layers")
    C, H, W = check_input_shape(input_shape, where)
    flat, seen, params, activations = None, set(), 0, C * H * W
    for entry in spec:
        if not isinstance(entry, dict):
            raise WeightsError(f"{where}: a layer entry is not an object: {str(entry)[:60]}")
        name = check_name(entry.get("name"), where)
        if name in seen:
            raise WeightsError(f"{where}: two layers are named {name!r}")
        seen.add(name)
        kind = entry.get("kind")
        if kind not in KINDS:
            raise WeightsError(f"{where}: layer {name!r} has unknown kind {kind!r} (known: {', '.join(KINDS)})")
        if kind == "conv":
            if flat is not None:
                raise WeightsError(f"{where}: conv layer {name!r} comes after the flatten")
            F, Cin, KH, KW = _shape(entry, 4, where)
            stride = _int(entry, "stride", 1, MAX_STRIDE, where)
            pad = _int(entry, "pad", 0, MAX_KERNEL, where)
            if Cin != C:
                raise WeightsError(f"{where}: layer {name!r} takes {Cin} channels, but its input has {C}")
            if KH > MAX_KERNEL or KW > MAX_KERNEL:
                raise WeightsError(f"{where}: layer {name!r} has a {KH}x{KW} kernel (at most {MAX_KERNEL})")
            H, W = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
            C, params = F, params + F * Cin * KH * KW + F
        elif kind == "pool":
            if flat is not None:
                raise WeightsError(f"{where}: pool layer {name!r} comes after the flatten")
            k = _int(entry, "kernel", 1, MAX_STRIDE, where)
            s = _int(entry, "stride", 1, MAX_STRIDE, where)
            H, W = pool_output_size(H, k, s), pool_output_size(W, k, s)
        elif kind == "flatten":
            if flat is not None:
                raise WeightsError(f"{where}: a second flatten ({name!r})")
            flat = C * H * W
        elif kind == "linear":
            if flat is None:
                raise WeightsError(f"{where}: linear layer {name!r} before any flatten")
            out, inputs = _shape(entry, 2, where)
            if inputs != flat:
                raise WeightsError(f"{where}: layer {name!r} takes {inputs} inputs, but gets {flat}")
            flat, params = out, params + out * inputs + out
        if H < 1 or W < 1:
            raise WeightsError(f"{where}: the map is empty after layer {name!r} (input too small for the layers)")
        activations += flat if flat is not None else C * H * W
        if params > MAX_PARAMS or activations > MAX_ACTIVATIONS:
            raise WeightsError(f"{where}: larger than minicnn accepts (over {MAX_PARAMS:,d} parameters or "
                               f"{MAX_ACTIVATIONS:,d} activations per image)")
    return params


def check_preprocessing(prep, where):
    ok = isinstance(prep, dict) and prep.get("channel_order", "RGB") in ("RGB", "BGR")
    try:
        scale = float(prep.get("scale", 1.0))
        mean = [float(v) for v in prep.get("mean", [0.0] * 3)]
        std = [float(v) for v in prep.get("std", [1.0] * 3)]
        ok = ok and math.isfinite(scale) and scale > 0 and len(mean) == len(std) == 3 and \
            all(math.isfinite(v) for v in mean + std) and all(v > 0 for v in std)
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise WeightsError(f"{where}: bad preprocessing {str(prep)[:120]} (channel_order RGB or BGR; "
                           "finite scale > 0; three finite means; three finite stds > 0)")
    return prep


def check_array(array, shape, where, key):
    """A floating-point array of exactly ``shape``, finite as float32; returns it as float32."""
    array = np.asarray(array)
    if array.dtype.kind != "f":
        raise WeightsError(f"{where}: '{key}' has dtype {array.dtype}, expected float32")
    if tuple(array.shape) != tuple(shape):
        raise WeightsError(f"{where}: '{key}' has shape {tuple(array.shape)}, expected {tuple(shape)}; "
                           "the file is for another architecture or was converted wrongly")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise WeightsError(f"{where}: '{key}' contains NaN or infinite values (as float32)")
    return array


def check_network(net, where):
    """A whole Network (what a converter built, what training made) before it is saved."""
    for layer in net.layers:     # the spec below reads the shapes: first check they are sound
        if layer.kind in ("conv", "linear"):
            rank = 4 if layer.kind == "conv" else 2
            if np.ndim(layer.w) != rank or np.ndim(layer.b) != 1:
                raise WeightsError(f"{where}: layer {layer.name!r} has weights of {np.ndim(layer.w)} and bias "
                                   f"of {np.ndim(layer.b)} dimensions, expected {rank} and 1")
    check_spec(layer_spec(net), net.input_shape, where)
    for name, layer in net.params():
        check_array(np.asarray(layer.w), layer.w.shape, where, f"{name}/weight")
        check_array(np.asarray(layer.b), (layer.w.shape[0],), where, f"{name}/bias")
    if "preprocessing" in net.meta:
        check_preprocessing(net.meta["preprocessing"], where)
    outputs = [layer.w.shape[0] for layer in net.layers if layer.kind == "linear"]
    if net.class_names is not None and outputs:
        check_class_names(list(net.class_names), outputs[-1], where)


def hdf5_object(group, path, where):
    """``group[path]``, following hard links only; datasets must keep their bytes in the file."""
    node = group
    for part in [p for p in path.split("/") if p]:
        try:
            link = node.get(part, getlink=True)
        except (KeyError, RuntimeError, OSError, ValueError):
            link = None
        if link is None:
            raise WeightsError(f"{where}: '{path}' is missing")
        if not isinstance(link, h5py.HardLink):
            raise WeightsError(f"{where}: '{path}' is a link to somewhere else ({type(link).__name__}); "
                               "weight files must hold their data themselves")
        try:
            node = node[part]
        except (KeyError, RuntimeError, OSError, ValueError):
            raise WeightsError(f"{where}: '{path}' cannot be read") from None
    if isinstance(node, h5py.Dataset):
        if node.external or node.is_virtual:
            raise WeightsError(f"{where}: '{path}' keeps its data outside the file (external storage or a "
                               "virtual dataset); refused")
    return node


def read_dataset(group, path, where, max_values=MAX_PARAMS):
    """The values of the dataset at ``path`` (found by ``hdf5_object``), its size bounded first."""
    return read_values(hdf5_object(group, path, where), path, where, max_values)


def read_values(dataset, path, where, max_values=MAX_PARAMS):
    """The values of a dataset already found by ``hdf5_object``, its declared size bounded first."""
    if not isinstance(dataset, h5py.Dataset):
        raise WeightsError(f"{where}: '{path}' is a group, expected a dataset")
    if dataset.size > max_values:
        raise WeightsError(f"{where}: '{path}' declares {dataset.size:,d} values, more than minicnn "
                           f"accepts ({max_values:,d})")
    try:
        return dataset[()]
    except (OSError, RuntimeError, ValueError, TypeError) as e:
        raise WeightsError(f"{where}: '{path}' cannot be read ({e.__class__.__name__})") from None


def zip_member(z, name, limit, path):
    """A zip member's bytes, refused when it says (or turns out) to be larger than ``limit``:
    a small archive can otherwise inflate to gigabytes (a zip bomb)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise ConvertError(f"{path}: zip member '{name}' holds {info.file_size:,d} bytes, more than the "
                           f"{limit:,d} it should")
    with z.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ConvertError(f"{path}: zip member '{name}' inflates beyond its declared size")
    return data
