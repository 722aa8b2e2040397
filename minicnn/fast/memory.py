"""Big arrays without page faults: keep freed memory for the next array of the same size.

A forward and backward pass allocates and frees the same big arrays again and again: VGG19's
conv1 output for a batch of 25 images is 321 MB. glibc's malloc (Linux) hands every block
above 32 MB straight to the kernel (mmap) and gives it back on free (munmap); the next array
of that size is mapped afresh, and the kernel must find and zero-fill every 4 KB page of it on
first touch. On this project's 2-core CPU that costs SmoothGrad on VGG19 (25 samples, one
batch) about a third of its time: 17 s against 12 s with the settings below (tutorial,
"Making it fast on the CPU").

``keep_freed_memory()`` tells malloc to serve blocks up to 1 GB from its heap, to grow the heap
in steps of 256 MB, and not to hand freed memory back to the kernel: the arrays of the next
pass reuse the pages of the last one. The price: the process keeps the heap at its peak size
until it ends, or until ``release_memory()``. Every pass of a Network calls ``keep_freed_memory()``
(the first call does the work), so every job that runs a network gets it; with other C
libraries (macOS, Windows) both functions do nothing. Set ``MINICNN_KEEP_MEMORY=0`` to leave
malloc alone.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3     # glibc's mallopt parameters
_done = False


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def keep_freed_memory():
    """Once per process: big blocks from the heap, freed memory kept for reuse (glibc only)."""
    global _done
    if _done or os.environ.get("MINICNN_KEEP_MEMORY", "1") == "0":
        return
    _done = True
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(1 << 30))
        libc.mallopt(M_TOP_PAD, ctypes.c_int(1 << 28))
        libc.mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2 ** 31 - 1))


def release_memory():
    """Give the heap's free memory back to the system now (e.g. in a notebook, after a job)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(ctypes.c_size_t(0))
