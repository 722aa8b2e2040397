"""PyTorch's pickles read without torch and without running anything: an allow-list unpickler.

A .pth file is a pickle, and unpickling runs whatever callables the file names. This module
reads only the few a state dict of tensors needs (torch's storage types, its tensor and
parameter rebuild functions, OrderedDict), as inert stand-ins that build NumPy arrays; every
other global is refused. Before anything is unpickled, the opcodes are scanned with bounds on
their number, the values they stand for and the nesting (``_scan_pickle``), so that a small file
cannot ask for unbounded memory or time.
"""
import collections
import io
import math
import pickle
import pickletools
import struct

import numpy as np

from .validate import MAX_PARAMS, ConvertError


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asked for something a weight file never needs."""


class _Unbuildable:
    """A pickle's BUILD opcode sets an object's state (``__setstate__``, else its ``__dict__``):
    on these objects that would let a file replace a dtype or a method with an int or a string.
    Nothing in a state dict needs it, so it is refused."""
    def __setstate__(self, state):
        raise UnsafePickleError(f"refusing to set the state of a {type(self).__name__.strip('_')} (BUILD)")


class _StorageType(_Unbuildable):
    """What ``torch.FloatStorage`` & co. become: a dtype token, nothing callable."""
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage(_Unbuildable):
    """A storage referenced by a persistent id; its bytes are attached after unpickling."""
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class TensorRef(_Unbuildable):
    """A tensor = (storage, offset, size, stride), materialized once the storage is read."""
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        data = self.storage.data
        if data is None:
            raise ConvertError("a tensor refers to storage data that is missing from the file")
        if len(self.size) != len(self.stride) or len(self.size) > 8 or \
                not all(isinstance(v, int) and not isinstance(v, bool) for v in self.size + self.stride + (self.offset,)):
            raise ConvertError("a tensor's shape or stride is not a short list of integers")
        if any(v < 0 for v in self.size):
            raise ConvertError(f"a tensor has a negative size {self.size}; not a weight file")
        n = math.prod(self.size)
        span = 1 + sum((s - 1) * st for s, st in zip(self.size, self.stride)) if n else 0
        if self.offset < 0 or self.offset + span > len(data) or any(st < 0 for st in self.stride):
            raise ConvertError("a tensor's offset/shape/stride runs outside its storage")
        # a weight tensor never holds more values than its storage: that would be a view that
        # repeats values (stride 0), which could blow a small file up into gigabytes
        if n > len(data) or any(st == 0 and s > 1 for s, st in zip(self.size, self.stride)):
            raise ConvertError(f"a tensor of shape {self.size} repeats the values of its storage "
                               f"({len(data)} values); not a weight file")
        itemsize = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size, strides=[st * itemsize for st in self.stride])
        return np.array(view, dtype=data.dtype.newbyteorder("="))  # a compact native copy


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    if not isinstance(storage, _Storage):
        raise UnsafePickleError("tensor rebuilt from something that is not a storage")
    return TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *rest):
    return data


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can only build a state dict: OrderedDicts, storages and tensors.

    ``find_class`` is the only way a pickle can reach Python objects (the GLOBAL and
    STACK_GLOBAL opcodes); REDUCE and BUILD can then only call what it returned. Allow-listing
    it (docs.python.org, "Restricting Globals") means a pickle naming ``os.system`` or anything
    else raises before any of it runs.
    """
    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages):
        super().__init__(file, encoding="utf-8")
        self.storages = storages   # key -> _Storage, filled as persistent ids are met

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(f"refusing to load '{module}.{name}': not part of a weight file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickleError(f"unexpected persistent id {str(pid)[:60]}")
        _, stype, key, _location, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise UnsafePickleError("storage views are not supported")
        key = str(key)[:64]
        if isinstance(numel, bool) or not isinstance(numel, int) or not 0 <= numel <= MAX_PARAMS:
            raise UnsafePickleError(f"storage size {str(numel)[:20]} is not a count of weights")
        if key not in self.storages:
            self.storages[key] = _Storage(stype.dtype, key, numel)
        return self.storages[key]


MAX_PICKLE_OPS = 1_000_000     # opcodes in one pickle (torchvision's VGG19: about 400)
MAX_PICKLE_SIZE = 1_000_000    # values an object stands for, shared parts counted each time
MAX_PICKLE_DEPTH = 32          # nesting of containers


def _scan_pickle(stream, what):
    """Walk the pickle's opcodes (pickletools, which runs nothing) and bound what it would
    build before the real unpickler sees it: the number of opcodes, the nesting depth, and the
    size each object stands for when its shared parts are counted every time they appear. A
    tuple that holds the same tuple twice, 64 levels deep, is a few hundred bytes but stands for
    2**64 values: hashing it (as a dict key) would never end. Returns the pickle's bytes."""
    start = stream.tell()
    stack, marks, memo = [], [], {}
    try:
        for count, (opcode, arg, _) in enumerate(pickletools.genops(stream)):
            if count > MAX_PICKLE_OPS:
                raise ConvertError(f"{what}: a pickle of over {MAX_PICKLE_OPS:,d} operations; not a weight file")
            name = opcode.name
            if name == "MARK":
                marks.append(len(stack))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name != "STOP":
                before = opcode.stack_before
                popped = []
                if pickletools.markobject in before:
                    m = marks.pop()
                    popped, stack[m:] = stack[m:], []
                    below = before.index(pickletools.markobject)
                else:
                    below = len(before)
                if below:
                    popped += stack[-below:]
                    del stack[-below:]
                size = 1 + sum(p[0] for p in popped)
                depth = 1 + max((p[1] for p in popped), default=0)
                if size > MAX_PICKLE_SIZE or depth > MAX_PICKLE_DEPTH:
                    raise ConvertError(f"{what}: a pickle that nests or repeats objects far beyond any "
                                       "weight file (a resource bomb); refused, nothing executed")
                stack += [(size, depth)] * len(opcode.stack_after)
    except (ValueError, KeyError, IndexError, EOFError, struct.error):
        raise ConvertError(f"{what}: corrupt or truncated pickle") from None
    end = stream.tell()
    stream.seek(start)
    return stream.read(end - start)


def unpickle(data, storages, what):
    """The object a pickle stands for (checked by ``_scan_pickle`` first), built by the allow-list
    unpickler; ``storages``: {key: bytes} of the tensors' data. ConvertError on anything else."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    data = _scan_pickle(stream, what)
    try:
        return SafeUnpickler(io.BytesIO(data), storages).load()
    except UnsafePickleError as e:
        raise ConvertError(f"{what}: unsafe pickle, nothing executed: {e}") from None
    except ConvertError:
        raise
    except Exception as e:   # a malformed pickle can fail in any of the few callables it may reach
        raise ConvertError(f"{what}: corrupt or malformed pickle ({e.__class__.__name__})") from None
