"""Curve detectors: the stimuli's responses, the score, the null, the figure.

Cammarata et al. 2020 ("Curve Detectors", Distill) found units in InceptionV1 that respond to
curves of one orientation and hardly to straight lines, and claimed that such units appear in
every large image classifier. This command tests every channel of a layer of any minicnn model
the way they did, with synthetic stimuli (stimuli.py) centred on the receptive field of
the layer's central unit, in two polarities (dark on light, light on dark):

* curves: arcs at ORIENTATIONS directions (every 10 degrees) and four radii;
* straight lines and step edges at the same orientations; controls: blank images and noise.

Responses are the unit's firing: a conv layer is read after the ReLU that follows it. For
each channel and polarity, with r(.) a response minus the response to that polarity's blank:

    C  best curve     max over radius and orientation of r(arc), at (r*, a*)
    K  curvature      (C - best straight line or edge) / C         clipped to [0, 1]
    Z  control        (C - best noise response anywhere in the layer's map) / C,  in [0, 1]
    D  direction      (C - r(arc at r*, a* + 180 degrees)) / C   in [0, 1]: a line detector
                      answers both sides of a line alike (D near 0), a curve detector one
    T  tuning         vector strength of the orientation tuning curve at r* (its values above
                      their median): 1 for one sharp peak, 0 for none or for two opposite peaks
    S  curve score    K * Z * D * T

A channel is a curve detector when S >= CURVE_THRESHOLD and S is above the 99th percentile of
the scores of randomly initialised copies of the same network (the null: what architecture and
stimuli produce with no learning). Channels are ranked by S; the others are labelled "line",
"edge" or "other" by what drives them most.
"""
import dataclasses

import numpy as np

from ..backend import to_device, to_numpy
from ..network import Network
from ..vgg19 import he_normal
from ..plotting import finish, new_figure
from ..progress import bar
from . import stimuli

ORIENTATIONS = 36
NOISE_IMAGES = 16
NULL_COPIES = 2
CURVE_THRESHOLD = 0.3


def firing_layer(net, layer):
    """The layer whose output is the units' firing: a conv's ReLU, if one follows it."""
    k = net.position(layer)
    if net.layers[k].kind == "conv" and k + 1 < len(net.layers) and net.layers[k + 1].kind == "relu":
        return net.layers[k + 1].name
    return layer


def probe_size(net, layer):
    """The smallest square input (up to the model's own size) that holds the whole receptive
    field of the layer's central unit: no zero padding reaches it, and a small input is fast."""
    full = net.input_shape[1]
    for size in range(8, full):
        _, (row, _), rf_size = central_unit(net, layer, size)
        if row - (rf_size - 1) / 2 >= 0 and row + (rf_size - 1) / 2 <= size - 1:
            return size
    return full


def central_unit(net, layer, size):
    """(row, col) of the layer's central unit and the input-pixel centre of its receptive field."""
    C, h, w = net.output_shape(layer, (3, size, size))
    rf_size, stride, offset = net.receptive_field(layer)
    i, j = h // 2, w // 2
    centre = (offset + i * stride + (rf_size - 1) / 2, offset + j * stride + (rf_size - 1) / 2)
    return (i, j), centre, rf_size


POLARITIES = {"dark": stimuli.DARK_ON_LIGHT, "light": stimuli.LIGHT_ON_DARK}
RADII = (0.12, 0.2, 0.35, 0.6)      # arc radii, as fractions of the receptive field


def make_stimuli(size, centre, rf_size, orientations=ORIENTATIONS):
    """All stimuli as one batch (N, 3, size, size), with (kind, polarity, radius, angle) for each."""
    angles = np.arange(orientations) * (360.0 / orientations)
    radii = [rf_size * f for f in RADII]
    thickness = max(1.0, rf_size / 14)
    length = 0.6 * rf_size
    images, info = [], []

    def add(image, *desc):
        images.append(image)
        info.append(desc)
    for polarity, (fg, bg) in POLARITIES.items():
        for r in radii:
            for a in angles:
                add(stimuli.arc(size, centre, r, a, thickness, min(length, 1.8 * np.pi * r), fg, bg),
                    "curve", polarity, r, a)
        for a in angles:
            add(stimuli.line(size, centre, a, thickness, length, fg, bg), "line", polarity, np.inf, a)
            add(stimuli.edge(size, centre, a, fg, bg), "edge", polarity, np.inf, a)
        add(stimuli.blank(size, bg), "blank", polarity, None, None)
    for seed in range(NOISE_IMAGES):
        add(stimuli.noise(size, seed), "noise", None, None, None)
    return np.stack(images), info, radii, angles


def responses(net, layer, images, unit, batch=64):
    """The central unit's response in every channel to every stimulus: (stimuli, channels)."""
    out, peak = [], []
    for k in range(0, len(images), batch):
        act = to_numpy(net.forward(to_device(images[k:k + batch], net.device), until=layer))
        out.append(act[:, :, unit[0], unit[1]])
        peak.append(act.max(axis=(2, 3)))
    return np.concatenate(out), np.concatenate(peak)


def _select(info, kind, polarity):
    return np.array([k == kind and p == polarity for k, p, _, _ in info])


def score_channels(resp, peak, info, radii, angles):
    """The numbers of the module docstring, for every channel, as a list of dicts. Each
    polarity (dark on light, light on dark) is scored on its own; a channel keeps the better."""
    n_r, n_a = len(radii), len(angles)
    ch = np.arange(resp.shape[1])
    best = None
    for polarity in POLARITIES:
        blank = resp[_select(info, "blank", polarity)][0]
        R = (resp[_select(info, "curve", polarity)] - blank).reshape(n_r, n_a, -1)
        lines = resp[_select(info, "line", polarity)] - blank
        edges = resp[_select(info, "edge", polarity)] - blank
        noise = peak[_select(info, "noise", None)].max(axis=0) - blank
        pref_r, pref_a = np.unravel_index(R.reshape(n_r * n_a, -1).argmax(axis=0), (n_r, n_a))
        C = R[pref_r, pref_a, ch]
        opposite = R[pref_r, (pref_a + n_a // 2) % n_a, ch]
        straight = np.maximum(lines.max(axis=0), edges.max(axis=0))
        pos_C = np.maximum(C, 1e-12)
        curvature = np.clip((C - straight) / pos_C, 0, 1)
        control = np.clip((C - noise) / pos_C, 0, 1)
        direction = np.clip((C - np.maximum(opposite, 0)) / pos_C, 0, 1)
        tuning_curve = R[pref_r, :, ch]                                               # (channel, angle)
        tuning_curve = np.maximum(tuning_curve - np.median(tuning_curve, axis=1, keepdims=True), 0)
        total = tuning_curve.sum(axis=1)
        vector = np.abs((tuning_curve * np.exp(1j * np.deg2rad(angles))).sum(axis=1))
        tuning = np.where(total > 0, vector / np.maximum(total, 1e-12), 0.0)
        score = np.where(C > 0, curvature * control * direction * tuning, 0.0)
        result = [{"channel": int(c), "score": float(score[c]), "curvature": float(curvature[c]),
                   "direction": float(direction[c]), "control": float(control[c]), "tuning": float(tuning[c]),
                   "best_curve": float(C[c]), "best_straight": float(straight[c]),
                   "opposite": float(opposite[c]), "noise": float(noise[c]),
                   "preferred_orientation": float(angles[pref_a[c]]),
                   "preferred_radius": float(radii[pref_r[c]]), "polarity": polarity,
                   "tuning_curve": R[pref_r[c], :, c].tolist()} for c in ch]
        best = result if best is None else [a if a["score"] >= b["score"] else b for a, b in zip(best, result)]
    return best


def random_copy(net, seed):
    """The same architecture with fresh random weights (He initialisation, zero biases): the
    control every score is compared with."""
    rng = np.random.default_rng(seed)
    layers = []
    for layer in net.layers:
        if layer.w is not None:
            shape, fan_in = layer.w.shape, layer.w[0].size
            layer = dataclasses.replace(
                layer, w=he_normal(rng, shape, fan_in, np.float32, draw_dtype=np.float64),
                b=np.zeros(shape[0], np.float32))
        layers.append(layer)
    copy = Network(layers, input_shape=net.input_shape, class_names=net.class_names, meta=net.meta)
    return copy.to(net.device)


def analyze(net, layer, size=None, orientations=ORIENTATIONS, null_copies=NULL_COPIES, progress=False):
    """Scores of every channel of ``layer`` (read at ``firing_layer``), best first, each with
    its percentile among the scores of ``null_copies`` randomly initialised copies of the
    network and a label; and the probe (stimuli, responses, the null's 99th percentile).
    ``progress``: a bar over the networks probed (this one, then each random copy)."""
    layer = firing_layer(net, layer)
    size = size or probe_size(net, layer)
    unit, centre, rf_size = central_unit(net, layer, size)
    images, info, radii, angles = make_stimuli(size, centre, rf_size, orientations)
    with bar(1 + null_copies, f"probing {layer} ({len(images)} stimuli)", progress) as b:
        resp, peak = responses(net, layer, images, unit)
        scores = score_channels(resp, peak, info, radii, angles)
        b.update(1)
        null = []
        for seed in range(null_copies):
            null += [s["score"] for s in score_channels(*responses(random_copy(net, seed), layer, images, unit),
                                                         info, radii, angles)]
            b.update(1)
        null = np.array(null)
    null_99 = float(np.percentile(null, 99)) if len(null) else 0.0
    kinds = np.array([d[0] for d in info])
    for s in scores:
        c = s["channel"]
        s["strongest_stimulus"] = int(resp[:, c].argmax())
        s["null_percentile"] = float((null < s["score"]).mean() * 100) if len(null) else None
        s["curve_detector"] = bool(s["score"] >= CURVE_THRESHOLD and s["score"] > null_99)
        best = {k: resp[kinds == k, c].max() - resp[kinds == "blank", c].max() for k in ("curve", "line", "edge")}
        straight = max(("line", "edge"), key=best.get)
        s["label"] = ("curve" if s["curve_detector"] else
                      straight if best[straight] > max(best["curve"], 0) else "other")
    ranked = sorted(scores, key=lambda s: -s["score"])
    return ranked, {"layer": layer, "images": images, "info": info, "radii": radii, "angles": angles,
                    "responses": resp, "null": null, "null_99": null_99, "unit": unit, "centre": centre,
                    "rf_size": rf_size, "size": size}


def tuning_curves(probe, channel, polarity):
    """(radii, angles) responses of one channel to the arcs of one polarity, minus its blank."""
    info, resp = probe["info"], probe["responses"]
    blank = resp[_select(info, "blank", polarity), channel][0]
    curves = resp[_select(info, "curve", polarity), channel] - blank
    return curves.reshape(len(probe["radii"]), len(probe["angles"]))


def top_patches(net, layer, channels, images, k=3):
    """For each of ``channels`` of ``layer``: the receptive-field crops of the ``k`` images in
    which it peaks highest, each around its peak (a list of (3, h, w) arrays, clipped at the
    image's edge). One pass over the images serves every channel."""
    p = net.run(to_device(images, net.device), until=layer, record=False)
    act = to_numpy(p.output)
    flat = act.reshape(act.shape[0], act.shape[1], -1)                  # (N, C, positions)
    size, stride, offset = net.receptive_field(layer)
    H, W = images.shape[-2:]
    out = []
    for c in channels:
        crops = []
        for n in np.argsort(-flat[:, c].max(axis=1))[:k]:
            i, j = divmod(int(flat[n, c].argmax()), act.shape[-1])
            y0, x0 = offset + i * stride, offset + j * stride
            crops.append(images[n][:, max(0, y0):min(H, y0 + size), max(0, x0):min(W, x0 + size)])
        out.append(crops)
    return out


def figure(net, ranked, probe, path, top=6, vis_steps=128, progress=False, examples=None):
    """For the top channels: the radial tuning curve (response vs orientation, one line per
    radius), the strongest stimulus, the feature visualization of the probed unit and, when
    ``examples`` (images the network reads, as (N, 3, H, W) in [0, 1]) are given, the three
    of them that drive the channel most, cropped to the receptive field around the peak.
    Responses are the unit's firing (after the ReLU) above its firing for a blank image; the
    angle is the direction the arc bulges towards, 0 degrees = right, growing clockwise as in
    image coordinates."""
    from matplotlib.ticker import MaxNLocator
    from ..visualize import FourierParam, objectives, render
    from ..visualize.transforms import standard_transforms
    layer, size, chosen = probe["layer"], probe["size"], ranked[:top]
    with bar(vis_steps, f"visualizing {len(chosen)} units", progress) as b:
        vis, _, _ = render(net, objectives.neuron(layer, [s["channel"] for s in chosen]), FourierParam(),
                           steps=vis_steps, size=size, n_images=len(chosen), transforms=standard_transforms(size),
                           progress=b)
    patches = top_patches(net, layer, [s["channel"] for s in chosen], examples) if examples is not None else None
    cols = 3 if examples is None else 6
    fig = new_figure(figsize=(7.2 if examples is None else 12, 2.2 * len(chosen)))
    theta = np.deg2rad(np.append(probe["angles"], probe["angles"][:1]))
    for k, s in enumerate(chosen):
        c = s["channel"]
        ax = fig.add_subplot(len(chosen), cols, cols * k + 1, projection="polar")
        for r, row in zip(probe["radii"], tuning_curves(probe, c, s["polarity"])):
            ax.plot(theta, np.maximum(np.append(row, row[:1]), 0), lw=1, label=f"radius {r:.0f} px")
        ax.set_theta_direction(-1)   # image coordinates: y points down, so angles grow clockwise
        ax.set_rlabel_position(225)
        ax.yaxis.set_major_locator(MaxNLocator(3))  # the radial scale: firing above blank
        ax.tick_params(labelsize=5)
        if k == 0:
            ax.legend(fontsize=5, loc="upper left", bbox_to_anchor=(1.0, 1.15))
        ax.set_title(f"{layer}:{c} ({s['label']}, {s['polarity']})  S = {s['score']:.2f}\n"
                     f"K {s['curvature']:.2f}  Z {s['control']:.2f}  D {s['direction']:.2f}  "
                     f"T {s['tuning']:.2f}", fontsize=7)
        kind, _, r, a = probe["info"][s["strongest_stimulus"]]
        panels = [(2, probe["images"][s["strongest_stimulus"]],
                   f"strongest: {kind}" + ("" if a is None else f", {a:.0f} deg")),
                  (3, vis[k], "feature visualization")]
        if patches is not None:
            panels += [(4 + n, crop, f"dataset example {n + 1}") for n, crop in enumerate(patches[k])]
        for col, image, title in panels:
            ax = fig.add_subplot(len(chosen), cols, cols * k + col)
            ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
            ax.set_title(title, fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"Curve detectors in {layer}: the top {len(chosen)} channels "
                 f"(null 99th percentile {probe['null_99']:.2f})\n"
                 "polar plots: firing (after the ReLU) above blank, vs the direction the arc bulges "
                 "(0 deg = right, clockwise)", fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def summary(ranked, probe):
    """The JSON-ready result: every channel's numbers, best first."""
    detectors = [s["channel"] for s in ranked if s["curve_detector"]]
    return {"layer": probe["layer"], "threshold": CURVE_THRESHOLD, "null_99": probe["null_99"],
            "null_channels": len(probe["null"]), "receptive_field": probe["rf_size"],
            "input_size": probe["size"], "curve_detectors": detectors,
            "channels": [{k: v for k, v in s.items() if k != "tuning_curve"} for s in ranked]}
