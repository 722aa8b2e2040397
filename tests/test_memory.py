"""minicnn.fast.memory: with freed memory kept, a big array's pages stay with the process when it is
freed (for the next array to reuse) instead of going back to the kernel (Linux with glibc;
skipped elsewhere)."""
import os
import subprocess
import sys

import pytest

from minicnn.fast import memory

CODE = """
import sys
import numpy as np
from minicnn.fast.memory import keep_freed_memory, release_memory
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
if sys.argv[1] == "keep":
    keep_freed_memory()
a = np.ones(1 << 24, np.float32)          # 64 MB, above glibc's 32 MB mmap threshold
held = rss()
del a
kept = rss()
release_memory()
print(held - kept, held - rss())
"""


@pytest.mark.skipif(memory._glibc() is None, reason="needs Linux with glibc")
def test_freed_pages_stay_for_reuse_until_released():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def given_back(mode):
        """MB returned to the kernel when the array is freed, and after release_memory()."""
        done = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=root))
        assert done.returncode == 0, done.stderr
        return [float(v) for v in done.stdout.split()]

    assert given_back("default")[0] > 50            # unmapped at once: the next array starts afresh
    freed, released = given_back("keep")
    assert freed < 10 and released > 50              # kept for reuse, until released


def test_it_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(memory, "_done", False)
    monkeypatch.setenv("MINICNN_KEEP_MEMORY", "0")
    called = []
    monkeypatch.setattr(memory, "_glibc", lambda: called.append(1))
    memory.keep_freed_memory()
    assert called == [] and memory._done is False
