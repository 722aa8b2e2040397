"""Where weight files live on this computer: minicnn's cache, and the frameworks' caches.

    <cache>/vgg19-keras.h5, vgg19-torchvision.h5, ...   VGG19 converted to minicnn's format
    <cache>/trained/NAME.h5                              models retrained by python -m minicnn.train

<cache> is $MINICNN_HOME if set, else the user cache folder of this system (``platformdirs``:
~/.cache/minicnn on Linux, ~/Library/Caches/minicnn on macOS, %LOCALAPPDATA%\\minicnn\\Cache on
Windows). PyTorch and Keras keep their own downloads elsewhere; a VGG19 file already there is
reused (after its checksum is checked) instead of downloaded again.
"""
import os

from ..errors import UsageError, WeightsError
from .validate import NAME      # a trained model's name is a layer-name-like safe file stem



def cache_dir():
    """$MINICNN_HOME, else the system's user cache folder for minicnn."""
    if os.environ.get("MINICNN_HOME"):
        return os.environ["MINICNN_HOME"]
    try:
        import platformdirs
        return platformdirs.user_cache_dir("minicnn", appauthor=False)
    except ImportError:   # an old environment: the XDG rule platformdirs follows on Linux
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return os.path.join(base, "minicnn")


def writable_dir(folder):
    """Create the cache folder (or another) when missing; WeightsError when it cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise WeightsError(f"cannot create the cache folder {folder} ({e.strerror}); "
                           "set MINICNN_HOME to a writable folder") from None
    if not os.access(folder, os.W_OK):
        raise WeightsError(f"the cache folder {folder} is not writable; "
                           "set MINICNN_HOME to a writable folder")


def check_name(name):
    """A trained model's name, refused unless it is a plain file stem (no folders, no dots first)."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or name.endswith(".h5"):
        raise UsageError(f"model name {str(name)[:70]!r}: use up to 64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit, without .h5")
    return name


def trained_path(name):
    """Where a model retrained under ``name`` is kept: <cache>/trained/NAME.h5."""
    return os.path.join(cache_dir(), "trained", check_name(name) + ".h5")


def trained_names():
    """The names of the retrained models in the cache, sorted."""
    folder = os.path.join(cache_dir(), "trained")
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".h5") and NAME.fullmatch(f[:-3]))


def entries():
    """Every weight file in minicnn's cache: (name, path, bytes). Names are what ``remove`` takes:
    a converted VGG19 file's name, or ``trained/NAME`` for a retrained model."""
    folder = cache_dir()
    found = []
    if os.path.isdir(folder):
        for f in sorted(os.listdir(folder)):
            path = os.path.join(folder, f)
            if f.endswith(".h5") and os.path.isfile(path):
                found.append((f, path, os.path.getsize(path)))
    for name in trained_names():
        path = trained_path(name)
        found.append((f"trained/{name}", path, os.path.getsize(path)))
    return found


def find(name):
    """The path of the cache entry named as ``entries()`` names it (a retrained model also by
    its plain name)."""
    found = entries()
    for entry, path, _ in found:
        if name in (entry, entry.removeprefix("trained/")):
            return path
    known = ", ".join(e for e, _, _ in found) or "the cache is empty"
    raise WeightsError(f"no cache entry named {str(name)[:70]!r} ({known})")


def remove(name):
    """Delete one cache entry (``find``), a retrained model with its training record; returns
    the path deleted."""
    path = find(name)
    record = os.path.splitext(path)[0] + "-training.json"
    try:
        os.remove(path)
        if os.path.dirname(path) == os.path.join(cache_dir(), "trained") and os.path.isfile(record):
            os.remove(record)
    except OSError as e:
        raise WeightsError(f"cannot remove {path} ({e.strerror}): is the cache folder read-only? "
                           "Set MINICNN_HOME to a cache you can write") from None
    return path


def framework_copies(source, url):
    """Paths where PyTorch or Keras may already keep the VGG19 file at ``url`` (which may not exist).

    torch.hub keeps it as $TORCH_HOME/hub/checkpoints/FILE (TORCH_HOME defaults to
    $XDG_CACHE_HOME/torch, else ~/.cache/torch); Keras' get_file as $KERAS_HOME/models/FILE
    (default ~/.keras/models). FILE is the URL's last part."""
    file = url.rsplit("/", 1)[1]
    if source == "torchvision":
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.environ.get("TORCH_HOME") or os.path.join(xdg, "torch")
        return [os.path.join(home, "hub", "checkpoints", file)]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [os.path.join(home, "models", file)]
