"""Writing files so that nothing half-written is ever left behind.

Every file minicnn writes (PNG, GIF, npz, JSON, HDF5 weights, downloads) goes through
``atomic_write``: the bytes go to a temporary file in the destination folder, which is renamed
onto the final name only once it is complete. If anything fails on the way (an exception, a
full disk, Ctrl-C), the temporary file is removed and an existing file of that name is left as
it was; an operating-system error while writing becomes an ``OutputError`` (one line for the
user) instead of a traceback. A destination that exists but is not a regular file (a folder, a device such as
/dev/null) is refused rather than replaced.
"""
import contextlib
import os
import stat
import re
import tempfile

from .errors import MinicnnError, UsageError

SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,99}$")


class OutputError(MinicnnError):
    """An output file that cannot be written (a full disk, a read-only folder, ...)."""


def one_line(message):
    """A message as one line: newlines and runs of spaces become single spaces."""
    return " ".join(str(message).split())


def output_name(*parts, suffix=""):
    """A file name made of parts joined by '_': each part is checked against a safe character
    set first (letters, digits, _ . + -), so data (a layer name from a weight file) can never
    steer a write into another folder."""
    for part in parts:
        if not SAFE_PART.match(str(part)):
            raise UsageError(f"refusing to build a file name from {str(part)[:60]!r}")
    return "_".join(str(p) for p in parts) + suffix


def safe_part(text, fallback="x", limit=40):
    """Free text (a class name: "tabby, tabby cat") as a part ``output_name`` accepts: each run
    of other characters becomes one '-', at most ``limit`` characters, ``fallback`` if empty."""
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-")[:limit].strip("-") or fallback


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
    try:
        os.makedirs(folder, exist_ok=True)   # an output folder is made when its first file is written
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)[:100]}.", suffix=suffix + ".part", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    try:
        try:
            yield tmp
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private: give it normal permissions
            os.replace(tmp, path)
        except OSError as e:            # a full disk, a file size limit, a vanished folder
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def name_max(folder):
    """The longest file name (bytes) the filesystem of ``folder`` (or of its nearest existing
    parent) takes; 255 where it does not say."""
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_names_fit(folder, names, option="--outdir"):
    """Refuse, before any work, an output name the filesystem would refuse (too long), and two
    outputs of one run with the same name (the second would overwrite the first)."""
    limit, seen = name_max(folder), set()
    for name in names:
        if len(os.fsencode(name)) + len(".part") + 12 > limit:      # the temporary name is longer
            raise UsageError(f"{option} {folder}: the output name {name[:40]}... is {len(os.fsencode(name))} "
                             f"bytes, too long for this filesystem (at most about {limit - 17}); rename the input")
        if name in seen:
            raise UsageError(f"{option} {folder}: two outputs of this run would both be {name}; rename an input")
        seen.add(name)


def write_text(path, text):
    """Write a text file (JSON, a report) atomically."""
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


@contextlib.contextmanager
def scratch_file(folder, prefix):
    """A temporary file in ``folder``, removed whatever happens (a download awaiting conversion)."""
    try:
        fd, path = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write in {folder}: {e.strerror}") from None
    os.close(fd)
    try:
        yield path
    finally:
        if os.path.exists(path):
            os.remove(path)


def regular_file(path, error, what="a file"):
    """Raise ``error`` unless ``path`` is a regular file (after links): a folder, a FIFO (which
    would block the read forever), a device (/dev/zero: endless) or a socket is refused."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, not {what}")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file (a pipe, device or socket); give {what}")
