"""The atlas's manifest (``atlas.json``): which model, which settings, what is done.

A rerun reads it first: the same model (by checksum) and the same settings render only what
is missing; another model, or a changed setting, is stated and refused unless ``force``. A
unit counts as done when the manifest lists it *and* its files are there, so a file lost
since is rendered again. The manifest is rewritten (atomically) after every finished task,
always after the files it lists: an interrupted run never lists a unit it has not written.
"""
import hashlib
import json
import os

import numpy as np

from ..backend import to_numpy
from ..errors import UsageError
from ..files import write_text

NAME = "atlas.json"
FORMAT = "minicnn-atlas"
VERSION = 1
MAX_BYTES = 64 << 20          # an atlas.json larger than this is not one minicnn wrote


def model_checksum(net):
    """SHA-256 of what the network computes: every layer's name, kind, geometry and
    parameters, the input shape, the preprocessing and the class names."""
    h = hashlib.sha256()
    h.update(json.dumps([list(net.input_shape), net.preprocessing, net.class_names], sort_keys=True).encode())
    for layer in net.layers:
        h.update(f"{layer.name}|{layer.kind}|{layer.stride}|{layer.pad}|{layer.kernel}".encode())
        for a in (layer.w, layer.b):
            if a is not None:
                a = np.ascontiguousarray(to_numpy(a), dtype=np.float32)
                h.update(str(a.shape).encode())
                h.update(a.tobytes())
    return h.hexdigest()


def new(model_name, checksum, settings):
    return {"format": FORMAT, "version": VERSION, "model": {"name": model_name, "checksum": checksum},
            "settings": settings, "analyzed": [], "units": {}}


def load(outdir):
    """The manifest in ``outdir``, or None when there is none; a file that is not a minicnn
    atlas manifest is refused (it may be somebody else's)."""
    path = os.path.join(outdir, NAME)
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path) or os.path.getsize(path) > MAX_BYTES:
        raise UsageError(f"--outdir {outdir}: {NAME} there is not a minicnn atlas manifest; choose another folder")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError):
        raise UsageError(f"--outdir {outdir}: {NAME} there is unreadable or not JSON; remove it, or choose "
                         "another folder") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("units"), dict) \
            or not isinstance(data.get("model"), dict) or not isinstance(data.get("settings"), dict):
        raise UsageError(f"--outdir {outdir}: {NAME} there is not a minicnn atlas manifest; choose another folder")
    if data.get("version") != VERSION:
        raise UsageError(f"--outdir {outdir}: an atlas of format version {data.get('version')!r} (this minicnn "
                         f"writes {VERSION}); use --force to rebuild it, or another folder")
    return data


def differences(old, checksum, settings):
    """What differs between the manifest ``old`` and this run: a list of short phrases."""
    out = []
    if old["model"].get("checksum") != checksum:
        out.append(f"it holds the atlas of another model ({str(old['model'].get('name'))[:60]}, checksum "
                   f"{str(old['model'].get('checksum'))[:12]}...)")
    for key in sorted(settings):
        if old["settings"].get(key) != settings[key]:
            out.append(f"{key} was {str(old['settings'].get(key))[:40]}, now {str(settings[key])[:40]}")
    return out


def save(outdir, manifest):
    write_text(os.path.join(outdir, NAME), json.dumps(manifest, indent=1, sort_keys=True))
