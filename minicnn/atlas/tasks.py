"""The atlas's units of work: what runs in this process, in a local worker process or on a
Dask worker. Each takes the network and a task (a small dict of numbers and names) and
returns arrays and numbers only; the client writes every file, so workers need no shared disk.

    render   a batch of channels of one layer: each channel's feature visualization, and
             ``diversity`` more renders of it pushed apart (Lucid's diversity objective), all
             channels of the batch in one forward/backward pass per step
    analyze  the layers' numbers: hierarchy labels, curve scores and tuning curves, class
             selectivity, and each channel's top dataset examples (where in which image)

A task is deterministic: the same task gives the same arrays on any worker (its seeds are
in it), which is what lets a killed worker's task be run again elsewhere, and a resumed
atlas equal an uninterrupted one.
"""
import numpy as np

from ..curves import firing_layer
from ..images import hwc_uint8
from ..visualize import FourierParam, channel_activations, objectives, render
from ..visualize.job import default_setup

DIVERSITY_WEIGHT = 1e2     # Lucid's and Lucent's weight of the diversity term (and the tutorial's)
_ON_DEVICE = {}            # id(network) -> the network moved to the worker's device, once


def run_task(net, task):
    """Run one task (see the module docstring) on ``task["device"]``; returns its result."""
    net = _on_device(net, task.get("device", "cpu"))
    if task["kind"] == "render":
        return render_units(net, task["layer"], task["channels"], task["steps"], task["size"], task["seed"],
                            task["diversity"])
    if task["kind"] == "analyze":
        return analyze_layers(net, task["layers"], task["seed"], task["held_out"], task.get("images"), task["top"])
    raise ValueError(f"unknown task kind {task['kind']!r}")


def _on_device(net, device):
    if device == "cpu" or net.device == device:
        return net
    if id(net) not in _ON_DEVICE:
        _ON_DEVICE[id(net)] = net.to(device)
    return _ON_DEVICE[id(net)]


def render_units(net, layer, channels, steps, size, seed, diversity=4):
    """Feature visualizations of ``channels`` of conv ``layer``: {"images": (n, S, S, 3) uint8,
    "diversity": (n, diversity, S, S, 3) uint8, "activation": (n,) the channel's mean firing
    on its own render (a fresh, untransformed forward pass), "objective": (n,) the last step's}.

    One render optimizes all n channels at once (a batch of n images, one channel each); the
    diversity renders are a second batch of n * diversity images, in groups of ``diversity``
    per channel, each group pushed apart from itself only."""
    _, transforms, _, _ = default_setup(net, layer, size)
    objective = objectives.channel(layer, channels)
    images, history, _ = render(net, objective, FourierParam(), steps=steps, size=size, seed=seed,
                                n_images=len(channels), transforms=transforms)
    acts = channel_activations(net, layer, images)
    out = {"images": hwc_uint8(images), "activation": acts[np.arange(len(channels)), channels].astype(float),
           "final_objective": float(history[-1]) if history else None}
    if diversity:
        repeated = [c for c in channels for _ in range(diversity)]
        objective = (objectives.channel(layer, repeated)
                     - DIVERSITY_WEIGHT * objectives.diversity(layer, group=diversity))
        several, _, _ = render(net, objective, FourierParam(), steps=steps, size=size, seed=seed + 1,
                               n_images=len(repeated), transforms=transforms)
        out["diversity"] = hwc_uint8(several).reshape((len(channels), diversity) + out["images"].shape[1:])
    return out


CURVE_FIELDS = ("score", "curvature", "control", "direction", "tuning", "polarity", "preferred_orientation",
                "preferred_radius", "label", "curve_detector", "null_percentile", "tuning_curve")


def analyze_layers(net, layers, seed, held_out, images=None, top=6):
    """The numbers of every channel of the conv ``layers``: {conv layer: {"firing": the layer
    read, "units": [one dict per channel], "curve_null_99", "examples": per channel its
    ``top`` dataset examples as [image index, row, col, peak firing]}}.

    Labels come from the hierarchy rule (``minicnn.hierarchy``) on the model's own held-out
    world (``held_out`` images) where it has one, else from the probes alone; curve numbers
    from ``minicnn.curves``. Dataset examples are taken from ``images`` ((N, H, W, 3) uint8,
    the user's) when given, else from the held-out world (None for a model without one)."""
    from ..hierarchy import held_out as world_held_out, measure
    from ..hierarchy.probes import peaks
    from ..models import builtin_of
    spec = builtin_of(net)
    data = labels = jumbled = None
    if spec is not None:
        data, labels, _, jumbled = world_held_out(spec, held_out, seed)
    result = measure(net, data, labels, None, seed, jumbled=jumbled, layers=layers)
    if images is not None:
        examples = np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255
        ex_peak, ex_where = peaks(net, examples, read=set(result["layers"]))
    else:                               # the held-out images: measure has their peaks already
        examples, ex_peak, ex_where = data, result["data_peak"], result["data_where"]
    out = {}
    for conv in layers:
        firing = firing_layer(net, conv)
        units = result["layers"][firing]
        ranked, probe = result["curves"][firing]
        by_channel = {s["channel"]: s for s in ranked}
        for u in units:
            s = by_channel[u["channel"]]
            u["curves"] = {k: (np.round(s[k], 4).tolist() if k == "tuning_curve" else s[k]) for k in CURVE_FIELDS}
        layer_out = {"firing": firing, "units": units, "curve_null_99": probe["null_99"],
                     "curve_angles": np.asarray(probe["angles"]).tolist(), "examples": None}
        if firing in ex_peak:
            w = net.output_shape(firing, examples.shape[1:])[2]
            peak, where = ex_peak[firing], ex_where[firing]
            layer_out["examples"] = [
                [[int(n), int(where[n, c] // w), int(where[n, c] % w), float(peak[n, c])]
                 for n in np.argsort(-peak[:, c], kind="stable")[:top]]
                for c in range(peak.shape[1])]
        out[conv] = layer_out
    return out


__all__ = ["DIVERSITY_WEIGHT", "analyze_layers", "render_units", "run_task"]
