"""Keras 3 files, read without Keras: the ``.keras`` archive and the bare ``.weights.h5``.

Keras 3 (``model.save("m.keras")``, ``model.save_weights("m.weights.h5")``) stores a layer's
variables as ``layers/<name>/vars/0`` (the kernel), ``vars/1`` (the bias), where <name> is not
the name the user gave but the layer's class in snake case with a counter: ``conv2d``,
``conv2d_1``, ..., ``max_pooling2d``, ``dense``. HDF5 lists groups alphabetically
(``conv2d_10`` before ``conv2d_2``), and a bare weights file does not say how layers of
different kinds interleave. So:

* a ``.keras`` archive (a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``)
  converts when it is a chain of layers minicnn has (Conv2D, MaxPooling2D, Flatten, Dense,
  ReLU, Dropout as the identity): the order comes from ``config.json``, the k-th layer of a class
  is that class's group with counter k;
* a bare ``.weights.h5`` converts only when its architecture is known: HED's (groups
  ``block1`` ... ``block5``, ``dsn1`` ... ``dsn5``, ``fuse``: see minicnn.weights.hed), or a
  VGG16 / VGG19 whose kernel shapes match (``architecture=`` names one). Nothing is guessed.

Kernels are (KH, KW, C, F) as in Keras 2 and become OIHW; the first dense layer after a
flatten gets its inputs permuted from H, W, C order to C, H, W order. Keras files do not
record preprocessing: the user names it (``PREPROCESSING``).
"""
import io
import json
import math
import re
import zipfile
import zlib

import h5py
import numpy as np

from ..errors import WeightsError
from ..network import Layer, Network
from ..preprocess import KERAS_CAFFE, TORCHVISION
from .validate import MAX_PARAMS, MAX_SIDE, ConvertError, hdf5_object, read_values, zip_member

PREPROCESSING = {"caffe": KERAS_CAFFE, "torch": TORCHVISION,
                 "none": {"channel_order": "RGB", "scale": 1.0, "mean": [0.0] * 3, "std": [1.0] * 3}}
ARCHITECTURES = ("vgg16", "vgg19", "hed")
MAX_CONFIG = 4 << 20                      # bytes of config.json (VGG19's: about 20 kB)
MAX_WEIGHTS = 4 * MAX_PARAMS + (64 << 20)  # bytes of model.weights.h5: float32 values and headers
COUNTER = re.compile(r"^([a-z][a-z0-9_]*?)(?:_(\d+))?$")


def chw_rows(kernel, C, H, W):
    """A Keras dense kernel (H*W*C, out) whose rows follow Keras' flatten (H, W, C order) -> the
    same numbers with rows in minicnn's flatten order (C, H, W; ``layers.flatten_forward``)."""
    return kernel.reshape(H, W, C, -1).transpose(2, 0, 1, 3).reshape(C * H * W, -1)


def snake_case(class_name):
    """Keras' name for a layer class in a weights file: Conv2D -> conv2d, MaxPooling2D ->
    max_pooling2d, ReLU -> re_lu (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def preprocessing_for(choice, where):
    if choice not in PREPROCESSING:
        raise ConvertError(f"{where}: Keras files do not record their preprocessing: give --preprocessing "
                           "caffe (BGR 0..255 minus the ImageNet mean, Keras' VGG), torch (RGB 0..1, ImageNet "
                           "mean/std) or none (RGB 0..1 as it is)")
    return dict(PREPROCESSING[choice])


# ------------------------------------------------------------------------------------------------
# Reading groups


def variables(group, path, where, total):
    """The arrays of ``<path>/vars`` in index order (0, 1, ...), as float32; ``total`` is a
    one-element list counting the values read so far (bounded by MAX_PARAMS)."""
    vars_group = hdf5_object(group, f"{path}/vars", where)
    if not isinstance(vars_group, h5py.Group):
        raise ConvertError(f"{where}: '{path}/vars' is not a group")
    keys = list(vars_group.keys())
    if len(keys) > 8:
        raise ConvertError(f"{where}: '{path}/vars' holds {len(keys)} variables; a layer minicnn reads has 2")
    if sorted(keys, key=lambda k: int(k) if k.isdecimal() and k.isascii() else -1) != [str(i) for i in range(len(keys))]:
        raise ConvertError(f"{where}: '{path}/vars' holds {keys[:4]}, expected datasets 0, 1, ...")
    arrays = []
    for i in range(len(keys)):
        dataset = hdf5_object(vars_group, str(i), where)
        if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
            raise ConvertError(f"{where}: '{path}/vars/{i}' is not a floating-point dataset")
        total[0] += dataset.size
        if total[0] > MAX_PARAMS:
            raise ConvertError(f"{where}: more than {MAX_PARAMS:,d} weights; larger than minicnn accepts")
        arrays.append(np.asarray(read_values(dataset, f"{path}/vars/{i}", where), dtype=np.float32))
    return arrays


def counted_groups(group, where):
    """{class base name: [group names in counter order]} of a ``layers`` group: conv2d,
    conv2d_1, ..., conv2d_10 (never HDF5's alphabetical conv2d_10 before conv2d_2)."""
    found = {}
    for name in group.keys():
        m = COUNTER.match(name)
        if m is None:
            raise ConvertError(f"{where}: layer group {name[:60]!r} is not named as Keras 3 names layers")
        found.setdefault(m.group(1), []).append((int(m.group(2) or 0), name))
    out = {}
    for base, items in found.items():
        items.sort()
        if [k for k, _ in items] != list(range(len(items))):
            raise ConvertError(f"{where}: the {base} layers are numbered {[k for k, _ in items][:8]}, "
                               "not 0, 1, 2, ... (a layer is missing)")
        out[base] = [name for _, name in items]
    return out


# ------------------------------------------------------------------------------------------------
# A chain of operations -> a minicnn Network with Caffe names


def build_chain(ops, input_shape, where):
    """ops: ("conv", kernel KH-KW-C-F, bias, pad, stride), ("relu",), ("pool", k, s[, same]),
    ("flatten",), ("linear", kernel in-out, bias). Layers are named as VGG's in Caffe: conv{b}_{i}
    and relu{b}_{i} in block b, pool{b} closes it, then flatten, fc{blocks + 1}, relu{...}, ..."""
    C, H, W = input_shape
    layers, block, i, fc, last = [], 1, 0, None, None
    for op in ops:
        kind = op[0]
        if kind == "conv":
            kernel, bias, pad, stride = op[1:]
            if fc is not None:
                raise ConvertError(f"{where}: a convolution after the flatten; not a VGG-style network")
            if kernel.ndim != 4 or kernel.shape[2] != C or bias.shape != (kernel.shape[3],):
                raise ConvertError(f"{where}: a kernel {kernel.shape} (bias {bias.shape}) does not follow a "
                                   f"{C}-channel input")
            i += 1
            w = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))          # (KH, KW, C, F) -> OIHW
            layers.append(Layer(f"conv{block}_{i}", "conv", w=w, b=bias, pad=pad, stride=stride))
            C = w.shape[0]
            H, W = (H + 2 * pad - w.shape[2]) // stride + 1, (W + 2 * pad - w.shape[3]) // stride + 1
        elif kind == "relu":
            if last not in ("conv", "linear"):
                raise ConvertError(f"{where}: a ReLU that follows no convolution or dense layer")
            layers.append(Layer(f"relu{block}_{i}" if fc is None else f"relu{fc}", "relu"))
        elif kind == "pool":
            if fc is not None or i == 0:
                raise ConvertError(f"{where}: a pool {'after the flatten' if fc else 'before any convolution of its block'}")
            k, s = op[1:3]
            if len(op) > 3 and op[3] and (H % s or W % s):
                raise ConvertError(f"{where}: a 'same' pool of a {H}x{W} map: Keras pads the odd last row, minicnn "
                                   "drops it; give the model an input size the pools divide")
            layers.append(Layer(f"pool{block}", "pool", kernel=k, stride=s))
            H, W = (H - k) // s + 1, (W - k) // s + 1
            block, i = block + 1, 0
        elif kind == "flatten":
            if fc is not None:
                raise ConvertError(f"{where}: two flattens")
            layers.append(Layer("flatten", "flatten"))
            fc, flat = (block if i else block - 1), None
        elif kind == "linear":
            kernel, bias = op[1:]
            if fc is None:
                raise ConvertError(f"{where}: a dense layer before any flatten; minicnn's dense layers take a "
                                   "flattened map")
            if kernel.ndim != 2 or bias.shape != (kernel.shape[1],):
                raise ConvertError(f"{where}: a dense kernel {kernel.shape} with a bias {bias.shape}")
            D = kernel.shape[0]
            if flat is None:                      # the first dense layer: rows in H, W, C order
                if D != C * H * W:
                    raise ConvertError(f"{where}: the first dense layer takes {D} inputs, but the map before it "
                                       f"has {C}x{H}x{W} = {C * H * W}")
                kernel = chw_rows(kernel, C, H, W)
            elif D != flat:
                raise ConvertError(f"{where}: a dense layer takes {D} inputs, but gets {flat}")
            fc += 1
            layers.append(Layer(f"fc{fc}", "linear", w=np.ascontiguousarray(kernel.T), b=bias))
            flat = kernel.shape[1]
        last = kind
        if H < 1 or W < 1:
            raise ConvertError(f"{where}: the map is empty after layer {layers[-1].name} for a {input_shape} input")
    if not any(layer.kind == "conv" for layer in layers):
        raise ConvertError(f"{where}: no convolutions; not a VGG-style network")
    return Network(layers, input_shape=tuple(input_shape))


# ------------------------------------------------------------------------------------------------
# The .keras archive


def read_archive(path):
    """(config dict, weights file as an h5py.File) of a .keras archive, each bounded."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            for need in ("config.json", "model.weights.h5"):
                if need not in names:
                    raise ConvertError(f"{path}: a zip without {need}; not a .keras archive")
            raw = zip_member(z, "config.json", MAX_CONFIG, path)
            weights = zip_member(z, "model.weights.h5", MAX_WEIGHTS, path)
    except zipfile.BadZipFile:
        raise ConvertError(f"{path}: corrupt or truncated zip file") from None
    except (RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as e:
        raise ConvertError(f"{path}: unreadable zip member ({e.__class__.__name__})") from None
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConvertError(f"{path}: config.json is not JSON") from None
    try:
        f = h5py.File(io.BytesIO(weights), "r")
    except OSError:
        raise ConvertError(f"{path}: model.weights.h5 is not a readable HDF5 file") from None
    return config, f


def _get(config, key, kind, where, what):
    value = config.get(key) if isinstance(config, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConvertError(f"{where}: {what}: '{key}' is {str(value)[:40]!r}, not what Keras writes")
    return value


def _pair(config, key, where, what, default=None):
    value = config.get(key, default)
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not (isinstance(value, list) and len(value) == 2 and
            all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in value)):
        raise ConvertError(f"{where}: {what}: '{key}' is {str(value)[:40]!r}, expected two small integers")
    return value


def _activation(config, where, what, last):
    act = config.get("activation", "linear")
    if act in ("linear", None):
        return []
    if act == "relu":
        return [("relu",)]
    if act == "softmax" and last:
        return []                 # scores are taken before the softmax (logits)
    raise ConvertError(f"{where}: {what} has activation {str(act)[:30]!r}; minicnn has relu "
                       "(and a final softmax, dropped: scores are logits)")


def archive_ops(config, weights, where):
    """The ops (see build_chain) and the input shape of a .keras archive's model."""
    model_class = config.get("class_name") if isinstance(config, dict) else None
    if model_class not in ("Sequential", "Functional"):
        raise ConvertError(f"{where}: a {str(model_class)[:40]!r} model; minicnn reads Sequential and "
                           "Functional models that are a chain of layers")
    entries = _get(_get(config, "config", dict, where, "the model"), "layers", list, where, "the model")
    if len(entries) > 512:
        raise ConvertError(f"{where}: {len(entries)} layers; more than minicnn accepts")
    root = hdf5_object(weights, "layers", where) if "layers" in weights else None   # hard links only
    if not isinstance(root, h5py.Group):
        raise ConvertError(f"{where}: model.weights.h5 has no 'layers' group")
    groups = counted_groups(root, where)
    counters, ops, input_shape, previous, total = {}, [], None, None, [0]
    last_dense = max((k for k, e in enumerate(entries) if isinstance(e, dict) and e.get("class_name") == "Dense"),
                     default=-1)
    for k, entry in enumerate(entries):
        cls = _get(entry, "class_name", str, where, f"layer {k}")
        cfg = _get(entry, "config", dict, where, f"layer {k}")
        name = str(cfg.get("name", cls))[:60]
        what = f"layer {name!r} ({cls[:40]})"
        if model_class == "Functional":
            _check_chain(entry, previous, where, what)
            previous = name
        if cls == "InputLayer":
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if not (isinstance(shape, list) and len(shape) == 4 and shape[3] == 3):
                raise ConvertError(f"{where}: {what}: input shape {str(shape)[:40]}; minicnn takes RGB images (H, W, 3)")
            side = shape[1] if isinstance(shape[1], int) and shape[1] == shape[2] else None
            input_shape = (3, side, side) if side and 1 <= side <= MAX_SIDE else None
            if model_class == "Sequential":
                continue              # a Sequential model's layers (and weights) leave it out
        base = snake_case(cls)
        index = counters.get(base, 0)
        counters[base] = index + 1
        group = groups.get(base, [])
        if index >= len(group):
            raise ConvertError(f"{where}: {what} has no weights group layers/{base}_{index}")
        arrays = variables(root, group[index], where, total)
        if cls in ("Conv2D", "Dense"):
            use_bias = cfg.get("use_bias", True)
            if len(arrays) != (2 if use_bias else 1):
                raise ConvertError(f"{where}: {what} has {len(arrays)} variables, expected kernel and bias")
            kernel = arrays[0]
            bias = arrays[1] if use_bias else np.zeros(kernel.shape[-1], np.float32)
        elif arrays:
            raise ConvertError(f"{where}: {what} has variables; expected none")
        if cls == "Conv2D":
            if cfg.get("data_format", "channels_last") != "channels_last" or cfg.get("groups", 1) != 1 or \
                    _pair(cfg, "dilation_rate", where, what, 1) != [1, 1]:
                raise ConvertError(f"{where}: {what}: minicnn convolves channels_last maps, one group, no dilation")
            kh, kw = _pair(cfg, "kernel_size", where, what)
            sh, sw = _pair(cfg, "strides", where, what, 1)
            if kernel.shape[:2] != (kh, kw) or kh != kw or sh != sw:
                raise ConvertError(f"{where}: {what}: kernel {kernel.shape}, strides {sh}x{sw}; minicnn takes "
                                   "square kernels and equal strides")
            padding = cfg.get("padding")
            if padding == "same" and kh % 2 == 1 and sh == 1:
                pad = (kh - 1) // 2
            elif padding == "valid":
                pad = 0
            else:
                raise ConvertError(f"{where}: {what}: padding {str(padding)[:20]!r} with a {kh}x{kw} kernel and "
                                   f"stride {sh}; minicnn has 'valid', and 'same' for odd kernels at stride 1")
            ops.append(("conv", kernel, bias, pad, sh))
            ops += _activation(cfg, where, what, last=False)
        elif cls == "MaxPooling2D":
            k, k2 = _pair(cfg, "pool_size", where, what)
            s, s2 = _pair({"strides": cfg.get("strides") or [k, k2]}, "strides", where, what)
            padding = cfg.get("padding", "valid")
            if k != k2 or s != s2 or padding not in ("valid", "same") or (padding == "same" and k != s):
                raise ConvertError(f"{where}: {what}: minicnn pools square windows, 'valid' (or 'same' with the "
                                   "stride equal to the window)")
            ops.append(("pool", k, s, padding == "same"))
        elif cls == "Flatten":
            ops.append(("flatten",))
        elif cls == "Dense":
            ops.append(("linear", kernel, bias))
            ops += _activation(cfg, where, what, last=k == last_dense)
        elif cls == "ReLU":
            if any(cfg.get(key) not in (None, 0, 0.0) for key in ("max_value", "negative_slope", "threshold")):
                raise ConvertError(f"{where}: {what}: a capped or leaky ReLU; minicnn's ReLU is max(0, x)")
            ops.append(("relu",))
        elif cls == "Activation":
            ops += _activation(cfg, where, what, last=k == len(entries) - 1)
        elif cls == "Dropout":
            pass                          # the identity at inference
        elif cls != "InputLayer":
            raise ConvertError(f"{where}: {what}: minicnn has no {cls[:40]} layer (it reads Conv2D, MaxPooling2D, "
                               "Flatten, Dense, ReLU, Activation and Dropout)")
    extra = [g for base, names in groups.items() for g in names[counters.get(base, 0):]]
    if extra:
        raise ConvertError(f"{where}: weights for layers the config does not have: {', '.join(extra[:4])}")
    return ops, input_shape


def _check_chain(entry, previous, where, what):
    """A Functional model's layer must take exactly the previous layer's output (a chain)."""
    nodes = entry.get("inbound_nodes", [])
    if previous is None:
        if nodes:
            raise ConvertError(f"{where}: {what} is first but has inputs")
        return
    try:
        (node,) = nodes
        (arg,) = node["args"]
        source = arg["config"]["keras_history"][0]
    except (TypeError, ValueError, KeyError, IndexError):
        raise ConvertError(f"{where}: {what} does not take one input; minicnn reads chains of layers") from None
    if source != previous:
        raise ConvertError(f"{where}: {what} takes {str(source)[:40]!r}, not the layer before it; minicnn reads "
                           "chains of layers")


def convert_archive(path, preprocessing):
    """A .keras archive -> minicnn Network; ``preprocessing``: a key of PREPROCESSING."""
    prep = preprocessing_for(preprocessing, path)
    config, weights = read_archive(path)
    try:
        with weights:
            ops, input_shape = archive_ops(config, weights, path)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        raise ConvertError(f"{path}: corrupt or unreadable model.weights.h5") from None
    if input_shape is None:
        side = _side_from_dense(ops, path)
        input_shape = (3, side, side)
    net = build_chain(ops, input_shape, path)
    net.meta["preprocessing"] = prep
    return net


def _side_from_dense(ops, where):
    """The input side when the archive does not record it: 224, or what the first dense
    layer's inputs imply for a square image through the convolutions and pools."""
    if not any(op[0] == "linear" for op in ops):
        return 224
    C, scale = 3, 1
    for op in ops:
        if op[0] == "conv":
            C = op[1].shape[3]
            if op[4] != 1 or op[3] * 2 != op[1].shape[0] - 1:
                raise ConvertError(f"{where}: the input size is not recorded; give the model an Input((H, W, 3))")
        elif op[0] == "pool":
            scale *= op[2]
            if op[1] != op[2]:
                raise ConvertError(f"{where}: the input size is not recorded; give the model an Input((H, W, 3))")
        elif op[0] == "linear":
            side = math.isqrt(op[1].shape[0] // C)
            if side * side * C != op[1].shape[0]:
                raise ConvertError(f"{where}: the first dense layer's {op[1].shape[0]} inputs are not a square "
                                   f"map of {C} channels; give the model an Input((H, W, 3))")
            return side * scale
    return 224


# ------------------------------------------------------------------------------------------------
# The bare .weights.h5 of a known architecture


def is_keras3(f):
    """An open HDF5 file written by Keras 3's saving code (a root 'vars' group, no Keras 2
    'layer_names' attribute)."""
    return "layer_names" not in f.attrs and "vars" in f and ("layers" in f or "block1" in f)


def convert_weights_file(path, preprocessing=None, architecture=None):
    """A bare Keras 3 ``.weights.h5`` of VGG16 or VGG19 (HED's: minicnn.weights.hed) -> Network."""
    if architecture not in (None, "vgg16", "vgg19"):
        raise ConvertError(f"{path}: unknown architecture {str(architecture)[:30]!r}; known: {', '.join(ARCHITECTURES)}")
    try:
        with h5py.File(path, "r") as f:
            prep = preprocessing_for(preprocessing, path)
            net = _convert_vgg(f, path, architecture)
    except WeightsError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        raise ConvertError(f"{path}: corrupt or unreadable HDF5 file") from None
    net.meta["preprocessing"] = prep
    return net


def _convert_vgg(f, where, architecture):
    from ..vgg19 import VGG16_BLOCKS, VGG19_BLOCKS
    unknown = (f"{where}: a Keras 3 weights file whose architecture minicnn does not know (only HED, VGG16 and "
               "VGG19 are recognised from their shapes); save the model with model.save('model.keras') and "
               "convert that archive")
    if "layers" not in f or set(f.keys()) - {"layers", "vars"}:
        raise ConvertError(unknown)
    root = hdf5_object(f, "layers", where)
    groups = counted_groups(root, where)
    if set(groups) - {"conv2d", "max_pooling2d", "dense", "flatten", "dropout", "input_layer"}:
        raise ConvertError(unknown)
    total = [0]
    convs = [variables(root, g, where, total) for g in groups.get("conv2d", [])]
    denses = [variables(root, g, where, total) for g in groups.get("dense", [])]
    shapes = [tuple(a[0].shape) if a else None for a in convs]
    candidates = {"vgg16": VGG16_BLOCKS, "vgg19": VGG19_BLOCKS}
    matches = [name for name, blocks in candidates.items()
               if (architecture in (None, name)) and shapes == _vgg_kernel_shapes(blocks)]
    if not matches or len(groups.get("max_pooling2d", [])) != 5 or len(denses) not in (0, 3) or \
            any(len(a) != 2 for a in convs + denses) or (denses and "flatten" not in groups):
        raise ConvertError(unknown if architecture is None else
                           f"{where}: its layers are not {architecture}'s ({len(convs)} convolutions, "
                           f"{len(groups.get('max_pooling2d', []))} pools, {len(denses)} dense layers)")
    blocks = candidates[matches[0]]
    ops, k = [], 0
    for widths in blocks:
        for _ in widths:
            ops += [("conv", convs[k][0], convs[k][1], 1, 1), ("relu",)]
            k += 1
        ops.append(("pool", 2, 2))
    if denses:
        ops.append(("flatten",))
        for j, (kernel, bias) in enumerate(denses):
            ops.append(("linear", kernel, bias))
            if j < len(denses) - 1:
                ops.append(("relu",))
    net = build_chain(ops, (3, 224, 224), where)
    net.meta["architecture"] = matches[0]
    return net


def _vgg_kernel_shapes(blocks):
    shapes, C = [], 3
    for widths in blocks:
        for F in widths:
            shapes.append((3, 3, C, F))
            C = F
    return shapes
