"""Array backends: NumPy on the CPU, CuPy on the GPU.

This is the only module that imports cupy. Every other module writes its math against an
``xp`` module taken from the array it is given (``xp = get_xp(x)``), so the same layer code
runs on both devices. Having no cupy, or cupy without a GPU, is the normal case on a laptop
and stays quiet: ``cuda_available()`` is False and CPU code never notices.
"""
import numpy as np

from .errors import DeviceError

try:  # cupy is an optional extra: pip install "minicnn[cuda12]"
    import cupy as _cupy
except Exception:  # ImportError, or a broken CUDA install: either way, no GPU for us
    _cupy = None


def cuda_available():
    """True when cupy imports and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def get_xp(x):
    """The array module (numpy or cupy) that owns array ``x``."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def device_of(x):
    """'cuda' for a cupy array, 'cpu' otherwise."""
    return "cpu" if get_xp(x) is np else "cuda"


def xp_for(device):
    """The array module for a device: numpy for 'cpu', cupy for 'cuda' (checked)."""
    if device == "cpu":
        return np
    check_device(device)
    return _cupy



def check_device(device):
    """Raise DeviceError with a one-line explanation if ``device`` cannot be used here."""
    if device == "cpu":
        return
    if device != "cuda":
        raise DeviceError(f"unknown device {device!r}: use 'cpu' or 'cuda'")
    if _cupy is None:
        raise DeviceError("--device cuda needs cupy: pip install 'minicnn[cuda12]' "
                          "(or [cuda13]) on a machine with an NVIDIA GPU")
    if not cuda_available():
        raise DeviceError("--device cuda: cupy is installed but no CUDA GPU is visible")


def to_device(x, device):
    """Copy an array to 'cpu' (numpy) or 'cuda' (cupy); a no-op when it is already there."""
    if device == "cpu":
        return to_numpy(x)
    check_device(device)
    return _cupy.asarray(x)


def cupy():
    """The cupy module itself, for the CUDA launchers (minicnn.fast.cuda); DeviceError without a GPU."""
    check_device("cuda")
    return _cupy


def to_numpy(x):
    """A numpy array from a numpy or cupy array (copies from the GPU when needed)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(x)


def synchronize(device):
    """Wait for queued GPU work (for timing); nothing to do on the CPU."""
    if device == "cuda" and _cupy is not None:
        _cupy.cuda.Device().synchronize()
