"""The hierarchy of a network, measured: every conv layer's units labelled by the rule
(``minicnn.hierarchy.rule``), on the network and on a random copy of it.

    probes.py   the probe images and the units' peaks     rule.py    the labels
    parts.py    named part detectors                      figure.py  the figure
"""
import numpy as np

from .. import curves, world
from .figure import figure
from .parts import LOCALIZED, named_part_detectors
from .probes import HELD_OUT_SEED, conv_layers, make_probes, peaks
from .rule import NULL_QUANTILE, SELECTIVITY, STRUCTURE, label_units, profile, tuning_null

TUNING_NULL_COPIES = 4   # random copies whose units set the edge/colour test's thresholds
JUMBLED_PER_CLASS = 40   # objects of each class, assembled and jumbled, for the object test
                         # (with the default 1,000 held-out images; fewer with fewer, at least 4)


# ------------------------------------------------------------------------------------------------
# Everything, for a network and its random copy


def tuning_nulls(net, probe_images, info, seed=0, copies=TUNING_NULL_COPIES, read=None):
    """{firing layer: the edge/colour test's thresholds}, from ``copies`` randomly initialised
    copies of ``net`` (seeds of their own: neither the trained network nor the random copy it
    is compared with is part of its own null); every conv layer, or the firing layers in ``read``."""
    peaks_of = [peaks(curves.random_copy(net, seed=2000 + 100 * seed + k), probe_images, read=read)[0]
                for k in range(copies)]
    return {firing: tuning_null([p[firing] for p in peaks_of], info) for firing in peaks_of[0]}


def measure(net, images, labels, parts=None, seed=0, null_copies=curves.NULL_COPIES, curve_probe=True,
            probes=None, nulls=None, jumbled=None, layers=None):
    """Label every channel of every conv layer. Returns {firing layer: [unit dicts]}, the data
    peaks and argmaxes, the named part detectors (when part maps are given) and each layer's
    ``curves.analyze`` result.
    ``curve_probe=False`` skips ``minicnn.curves`` (the slowest part): no unit is then labelled
    curve, and the labels after it in the rule take those units. ``probes``: the result of
    ``make_probes`` if already made (else made here from ``seed``); ``nulls``: the result of
    ``tuning_nulls`` (else made here); ``jumbled``: (assembled, jumbled, labels) from
    ``world.make_jumbled`` (else no unit is labelled object); ``layers``: the conv layers to
    label (default: all; the atlas asks for some)."""
    convs = [(conv, firing) for conv, firing in conv_layers(net) if layers is None or conv in layers]
    read = {firing for _, firing in convs}
    probe_images, info, extent = probes or make_probes(net.input_shape[1], seed)
    nulls = nulls or tuning_nulls(net, probe_images, info, seed, read=read)
    probe_peak, _ = peaks(net, probe_images, read=read)
    data_peak, data_where = peaks(net, images, read=read) if images is not None else ({}, {})
    if jumbled is not None:
        assembled_peak, jumbled_peak = peaks(net, jumbled[0], read=read)[0], peaks(net, jumbled[1], read=read)[0]
    n_classes = len(net.class_names) if images is not None else 0
    layers, curve_results = {}, {}
    for conv, firing in convs:
        flags = np.zeros(probe_peak[firing].shape[1], bool)
        if curve_probe:
            ranked, _ = curve_results[firing] = curves.analyze(net, conv, null_copies=null_copies)
            for s in ranked:
                flags[s["channel"]] = s["curve_detector"]
        control = (assembled_peak[firing], jumbled_peak[firing], jumbled[2]) if jumbled is not None else None
        layers[firing] = label_units(probe_peak[firing], info, extent, data_peak.get(firing), labels, n_classes,
                                     flags, net.receptive_field(firing)[0], nulls[firing], control)
    named = (named_part_detectors(net, layers, data_where, labels, parts, n_classes)
             if parts is not None else {})
    return {"layers": layers, "named_parts": named, "data_peak": data_peak, "data_where": data_where,
            "nulls": nulls, "curves": curve_results}


def analyze(net, images, labels, parts=None, seed=0, null_copies=curves.NULL_COPIES, curve_probe=True, jumbled=None):
    """The hierarchy of ``net`` and of a randomly initialised copy, side by side (one set of
    probes, one null and one jumbled control for both)."""
    probes = make_probes(net.input_shape[1], seed)
    nulls = tuning_nulls(net, probes[0], probes[1], seed)
    trained = measure(net, images, labels, parts, seed, null_copies, curve_probe, probes, nulls, jumbled)
    random = measure(curves.random_copy(net, seed=1000 + seed), images, labels, parts, seed, null_copies,
                     curve_probe, probes, nulls, jumbled)
    return trained, random


def summary(trained, random):
    """The JSON-ready numbers: per layer, both profiles, the edge/colour thresholds and the
    object test's candidates and survivors; the named part detectors."""
    out = {"criteria": {"selectivity": SELECTIVITY, "structure": STRUCTURE, "localized": LOCALIZED,
                        "curve_threshold": curves.CURVE_THRESHOLD, "null_quantile": NULL_QUANTILE,
                        "tuning_null_copies": TUNING_NULL_COPIES},
           "layers": [], "named_parts": trained["named_parts"], "random_named_parts": random["named_parts"]}
    for firing, units in trained["layers"].items():
        out["layers"].append({"layer": firing, "channels": len(units),
                              "trained": profile(units), "random": profile(random["layers"][firing]),
                              "object_candidates": {"trained": _candidates(units),
                                                    "random": _candidates(random["layers"][firing])},
                              "curve_detectors": {"trained": sum(u["curve_detector"] for u in units),
                                                  "random": sum(u["curve_detector"] for u in random["layers"][firing])},
                              "tuning_null": trained["nulls"][firing], "units": units})
    return out


def _candidates(units):
    """How many units pass the object test before the jumbled control, and how many after."""
    return {"before_jumbled_control": sum(u["object_candidate"] for u in units),
            "object": sum(u["label"] == "object" for u in units)}


# ------------------------------------------------------------------------------------------------
# Everything the command reports


def held_out_images(spec, n_images=1000, seed=0):
    """(images, labels, masks or part maps) of the held-out images alone (see ``held_out``)."""
    return spec.world.make_dataset(n_images, seed=HELD_OUT_SEED + seed)


def held_out(spec, n_images=1000, seed=0):
    """The images a built-in model is measured on: (images, labels, part maps or None, the
    jumbled control or None) of its own world, never seen in training. Only the world model's
    objects have parts (so part maps and a jumbled control); the shapes world's are one piece."""
    images, labels, parts = held_out_images(spec, n_images, seed)
    if spec.world is not world:
        return images, labels, None, None
    per_class = min(JUMBLED_PER_CLASS, max(4, n_images // 25))
    return images, labels, parts, world.make_jumbled(per_class, seed=HELD_OUT_SEED + 7 + seed)


def run(net, n_images=1000, seed=0, null_copies=curves.NULL_COPIES, vis_steps=128, figure_path=None):
    """Everything ``python -m minicnn.hierarchy`` reports, for a built-in model ``net``: the
    JSON-ready summary (with ``figure`` when ``figure_path`` is given, the figure written there).
    Held-out images come from the model's own world (seed HELD_OUT_SEED + seed); part maps,
    the jumbled control (so object labels) and named part detectors only for the world model. A model without a world of its own (VGG16's
    trunk, VGG19) is measured by the probes alone: edge/colour, curve and texture units against
    its random copy, no part or object labels (they need the model's classes), no figure."""
    from ..models import builtin_of
    spec = builtin_of(net)
    if spec is None:
        trained, random = analyze(net, None, None, None, seed, null_copies)
        result = summary(trained, random)
        result["note"] = ("no world of its own: units labelled by the probes only (edge/colour, curve, texture); "
                          "part and object labels need held-out images of the model's classes, so none are given")
        return result
    images, labels, parts, jumbled = held_out(spec, n_images, seed)
    trained, random = analyze(net, images, labels, parts, seed, null_copies, jumbled=jumbled)
    result = summary(trained, random)
    if jumbled is None:
        result["note"] = ("the objects of this world are one piece: there are no parts to jumble, so the object "
                          "test has no control and no unit is labelled object")
    if figure_path is not None:
        figure(net, trained, result, images, figure_path, vis_steps=vis_steps)
        result["figure"] = figure_path
    return result
