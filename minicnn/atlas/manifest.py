"""The atlas's manifest (``atlas.json``): which model, which settings, what is done.

A rerun reads it first: the same model (by checksum) and the same settings render only what
is missing; another model, or a changed setting, is stated and refused unless ``force``. A
unit counts as done when the manifest lists it *and* its files are there, so a file lost
since is rendered again. The manifest is rewritten (atomically) after every finished task,
always after the files it lists: an interrupted run never lists a unit it has not written.
"""
import hashlib
import json
import math
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
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"--outdir {outdir}: {NAME} there is not a minicnn atlas manifest; choose another folder")
    if data.get("version") != VERSION:
        raise UsageError(f"--outdir {outdir}: an atlas of format version {data.get('version')!r} (this minicnn "
                         f"writes {VERSION}); use --force to rebuild it, or another folder")
    if not well_formed(data):
        raise UsageError(f"--outdir {outdir}: {NAME} there is damaged (not as minicnn writes it); use --force to "
                         "rebuild the atlas, or another folder")
    return data


def _names(value):
    return isinstance(value, list) and all(isinstance(v, str) and len(v) <= 100 for v in value)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def well_formed(data):
    """Whether a manifest read from disk has every field as ``new`` and ``build`` write them:
    what the pages read from it is then safe to read."""
    units, model = data.get("units"), data.get("model")
    return (isinstance(model, dict) and isinstance(model.get("checksum"), str)
            and isinstance(model.get("name", ""), str) and len(model.get("name", "")) <= 200
            and isinstance(data.get("settings"), dict) and _names(data.get("analyzed"))
            and _names(data.get("layers", [])) and isinstance(units, dict)
            and all(isinstance(layer, str) and isinstance(entries, dict)
                    and all(isinstance(c, str) and c.isdigit() and isinstance(e, dict) and _number(e.get("activation"))
                            for c, e in entries.items())
                    for layer, entries in units.items()))


UNIT_NUMBERS = ("selectivity", "class_mean", "edge", "grating", "curve", "texture", "part", "orientation_tuning",
                "hue_tuning")
CURVE_NUMBERS = ("score", "curvature", "control", "direction", "tuning", "preferred_radius")


def analysis_well_formed(a, channels, n_classes):
    """Whether a layer's analysis.json, read back, holds what the pages read, for a layer of
    ``channels`` channels and a model of ``n_classes`` classes."""
    if not isinstance(a, dict) or not isinstance(a.get("firing"), str) or not _number(a.get("curve_null_99")):
        return False
    angles, units, examples = a.get("curve_angles"), a.get("units"), a.get("examples")
    if not (isinstance(angles, list) and all(map(_number, angles)) and isinstance(units, list)
            and len(units) == channels):
        return False
    for u in units:
        if not isinstance(u, dict) or not isinstance(u.get("curves"), dict):
            return False
        cv = u["curves"]
        if not (all(_number(u.get(k)) for k in UNIT_NUMBERS) and all(_number(cv.get(k)) for k in CURVE_NUMBERS)
                and all(isinstance(u.get(k), str) for k in ("label", "best_texture", "best_part"))
                and all(isinstance(cv.get(k), str) for k in ("label", "polarity"))
                and isinstance(cv.get("curve_detector"), bool)
                and isinstance(u.get("preferred_class"), int) and 0 <= u["preferred_class"] < max(n_classes, 1)
                and isinstance(cv.get("tuning_curve"), list) and len(cv["tuning_curve"]) == len(angles)
                and all(map(_number, cv["tuning_curve"]))):
            return False
    return examples is None or (isinstance(examples, list) and len(examples) == channels and all(
        isinstance(top, list) and all(isinstance(e, list) and len(e) == 4 and all(map(_number, e)) for e in top)
        for top in examples))


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
