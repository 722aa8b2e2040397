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
from .rule import SELECTIVITY, STRUCTURE, label_units, profile


# ------------------------------------------------------------------------------------------------
# Everything, for a network and its random copy


def measure(net, images, labels, parts=None, seed=0, null_copies=curves.NULL_COPIES, curve_probe=True,
            probes=None):
    """Label every channel of every conv layer. Returns {firing layer: [unit dicts]}, the data
    peaks and argmaxes, and the named part detectors (when part maps are given).
    ``curve_probe=False`` skips ``minicnn.curves`` (the slowest part): no unit is then labelled
    curve, and the labels after it in the rule take those units. ``probes``: the result of
    ``make_probes`` if already made (else made here from ``seed``)."""
    probe_images, info, extent = probes or make_probes(net.input_shape[1], seed)
    probe_peak, _ = peaks(net, probe_images)
    data_peak, data_where = peaks(net, images) if images is not None else ({}, {})
    n_classes = len(net.class_names) if images is not None else 0
    layers = {}
    for conv, firing in conv_layers(net):
        flags = np.zeros(probe_peak[firing].shape[1], bool)
        if curve_probe:
            ranked, _ = curves.analyze(net, conv, null_copies=null_copies)
            for s in ranked:
                flags[s["channel"]] = s["curve_detector"]
        layers[firing] = label_units(probe_peak[firing], info, extent, data_peak.get(firing), labels, n_classes,
                                     flags, net.receptive_field(firing)[0])
    named = (named_part_detectors(net, layers, data_where, labels, parts, n_classes)
             if parts is not None else {})
    return {"layers": layers, "named_parts": named, "data_peak": data_peak, "data_where": data_where}


def analyze(net, images, labels, parts=None, seed=0, null_copies=curves.NULL_COPIES, curve_probe=True):
    """The hierarchy of ``net`` and of a randomly initialised copy, side by side (one set of
    probes for both)."""
    probes = make_probes(net.input_shape[1], seed)
    trained = measure(net, images, labels, parts, seed, null_copies, curve_probe, probes)
    random = measure(curves.random_copy(net, seed=1000 + seed), images, labels, parts, seed, null_copies,
                     curve_probe, probes)
    return trained, random


def summary(trained, random):
    """The JSON-ready numbers: per layer, both profiles; the named part detectors."""
    out = {"criteria": {"selectivity": SELECTIVITY, "structure": STRUCTURE, "localized": LOCALIZED,
                        "curve_threshold": curves.CURVE_THRESHOLD},
           "layers": [], "named_parts": trained["named_parts"], "random_named_parts": random["named_parts"]}
    for firing, units in trained["layers"].items():
        out["layers"].append({"layer": firing, "channels": len(units),
                              "trained": profile(units), "random": profile(random["layers"][firing]),
                              "units": units})
    return out


# ------------------------------------------------------------------------------------------------
# Everything the command reports


def run(net, n_images=1000, seed=0, null_copies=curves.NULL_COPIES, vis_steps=128, figure_path=None):
    """Everything ``python -m minicnn.hierarchy`` reports, for a built-in model ``net``: the
    JSON-ready summary (with ``figure`` when ``figure_path`` is given, the figure written there).
    Held-out images come from the model's own world (seed HELD_OUT_SEED + seed); part maps and
    named part detectors only for the world model. A model without a world of its own (VGG16's
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
    images, labels, parts = spec.world.make_dataset(n_images, seed=HELD_OUT_SEED + seed)
    if spec.world is not world:
        parts = None                             # the shapes world has object masks, not parts
    trained, random = analyze(net, images, labels, parts, seed, null_copies)
    result = summary(trained, random)
    if figure_path is not None:
        figure(net, trained, result, images, figure_path, vis_steps=vis_steps)
        result["figure"] = figure_path
    return result
