"""Writing files so that nothing half-written is ever left behind.

Every file minicnn writes (PNG, GIF, npz, JSON, HDF5 weights, downloads) goes through
``atomic_write``: the bytes go to a temporary file in the destination folder, which is renamed
onto the final name only once it is complete. If anything fails on the way (an exception, a
full disk, Ctrl-C), the temporary file is removed and an existing file of that name is left as
it was. A destination that exists but is not a regular file (a folder, a device such as
/dev/null) is refused rather than replaced.
"""
import contextlib
import os
import tempfile

from .errors import UsageError


@contextlib.contextmanager
def atomic_write(path, suffix=""):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

        with atomic_write("out.png") as tmp:
            image.save(tmp, format="PNG")

    ``suffix`` ends the temporary name (some writers pick a format from it, e.g. ".npz").
    """
    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isfile(path):
        raise UsageError(f"{path}: exists and is not a regular file; choose another name")
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix + ".part", dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private: give it normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path, text):
    """Write a text file (JSON, a report) atomically."""
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
