"""One saliency job, checked and run: what ``python -m minicnn.saliency`` and
``minicnn.explain`` both call, so that the two give the same answers and the same errors.

    job = explain(net, pixels, ["vanilla", "gradcam"], target="tabby", layer="conv5_4")
    job.targets, job.scores, job.results["gradcam"].saliency
"""
from dataclasses import dataclass

import numpy as np

from ..backend import to_device, to_numpy
from ..classify import check_finite, has_classifier, resolve_class, softmax
from ..checks import SEED_MAX, real, whole
from ..errors import UsageError
from .methods import BASELINES, METHODS, ONE_PASS, image_pass, run_method
from .targets import parse_unit, scores as unit_scores

# The options a method reads (run_method), each with the command's default.
OPTIONS = {"samples": 25, "noise": 0.15, "seed": 0, "steps": 50, "layer": None, "baseline_kind": "black",
           "patch": None, "stride": None, "batch": None}


@dataclass
class Explained:
    """``targets``: one class index or Unit per image; ``scores``: the logits (N, K) for class
    targets, the units' activations (N,) for units; ``probabilities``: softmax of the logits, or
    None for units; ``results``: {method: Saliency}; ``options``: the options as the methods
    read them (defaults filled in, the Grad-CAM layer by its own name)."""
    targets: list
    scores: np.ndarray
    probabilities: object
    results: dict
    options: dict


# The range of each number (the command's argparse types are made from these).
RANGES = {"samples": (1, 1000), "steps": (1, 1000), "patch": (1, 1024), "stride": (1, 1024), "batch": (1, 1000),
          "seed": (0, SEED_MAX), "noise": (0.0, 10.0)}


def check_options(options):
    """The options with every default filled in, each checked (type, range, finiteness); an
    unknown name is a UsageError, not ignored."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise UsageError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"known: {', '.join(OPTIONS)}")
    options = {**OPTIONS, **options}
    for name in ("samples", "steps", "seed"):
        options[name] = whole(name, options[name], *RANGES[name])
    for name in ("patch", "stride", "batch"):
        options[name] = whole(name, options[name], *RANGES[name], none_ok=True)
    options["noise"] = real("noise", options["noise"], *RANGES["noise"])
    if options["baseline_kind"] not in BASELINES:
        raise UsageError(f"unknown baseline {options['baseline_kind']!r}; known: {', '.join(BASELINES)}")
    if options["layer"] is not None and not isinstance(options["layer"], str):
        raise UsageError(f"layer must be a layer's name, not {options['layer']!r}")
    return options


def gradcam_layer(net, layer, unit=None):
    """Grad-CAM's layer by any accepted name, checked: a conv, relu or pool layer before the
    flatten, and not after the unit's own layer."""
    from ..vgg19 import find_layer
    name = find_layer(net, layer)
    if net.layer(name).kind not in ("conv", "relu", "pool") or net.position(name) >= net.flatten_index:
        raise UsageError(f"--layer {name}: Grad-CAM needs a convolutional layer")
    if unit is not None and net.position(name) > net.position(unit.layer):
        raise UsageError(f"--layer {name}: Grad-CAM's layer must not come after the unit's ({unit.layer})")
    return name


def resolve_targets(net, target, logits):
    """One class index per image from None (each image's top class), an index, a name, or a
    list of those (one per image)."""
    n = len(logits)
    if target is None:
        return [int(row.argmax()) for row in logits]
    if isinstance(target, np.ndarray) and target.ndim == 0:
        target = target.item()                  # a 0-d array: one target
    items = list(target) if isinstance(target, (list, tuple, np.ndarray)) else [target] * n
    if len(items) != n:
        raise UsageError(f"{len(items)} targets for {n} images")
    try:
        return [resolve_class(t, net.class_names) for t in items]
    except ValueError as e:
        raise UsageError(str(e)) from None


def explain(net, pixels, methods, target=None, unit=None, progress=None, **options):
    """Run ``methods`` (names of METHODS; none: only the targets and scores) on RGB pixels
    (N, 3, H, W) for a class ``target`` (None: each image's top class; an index, a name, or one
    per image) or a ``unit`` ("conv5_3:12", "conv5_3:12@7,7", or a Unit). Every input is
    checked before any work. ``progress``: a bar, updated once per method."""
    for method in methods:
        if method not in METHODS:
            raise UsageError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    options = check_options(options)
    if unit is not None:
        if target is not None:
            raise UsageError("--unit explains a unit: it does not go with --class (a class target); "
                             "give one of the two")
        unit = parse_unit(net, unit) if isinstance(unit, str) else unit
    elif not has_classifier(net):
        raise UsageError(f"{net.meta.get('path', 'this model')} has no classifier: explain a unit instead "
                         "(--unit LAYER:CHANNEL, e.g. --unit conv5_3:12)")
    if options["layer"] is not None:
        options["layer"] = gradcam_layer(net, options["layer"], unit)
    if options["batch"] is None:
        del options["batch"]                           # each method's own default
    pixels = to_device(pixels, net.device)
    # The scores come first (the targets may be each image's top class). When the first method
    # is one pass of the images themselves, that pass gives them, and the method uses it up:
    # a vanilla map is one forward and one backward pass, not two forwards.
    stop = unit.layer if unit is not None else None
    opening = methods[0] if methods and methods[0] in ONE_PASS else None
    with np.errstate(over="ignore", invalid="ignore"):   # said in one line by check_finite
        p = image_pass(net, pixels, stop, opening, options) if opening else None
        out = p.output if p is not None else net.forward(pixels, until=stop)
        if unit is not None:
            targets = [unit] * len(pixels)
            out = unit_scores(out, targets)
        scores = to_numpy(check_finite(out, net))
    if unit is None:
        targets = resolve_targets(net, target, scores)
    results = {}
    for method in methods:
        given, p = p, None                               # the images' pass: the first method's only
        results[method] = run_method(method, net, pixels, targets, options, p=given)
        if progress is not None:
            progress.update(1)
    return Explained(targets, scores, softmax(scores) if unit is None else None, results, options)
