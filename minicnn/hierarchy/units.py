"""What do the units of each layer detect? Measured, not asserted (``python -m minicnn.hierarchy``).

The lesson's claim is a hierarchy: early layers detect edges and colours, middle layers
textures, curves and parts, late layers whole objects. This command labels every channel of
every conv layer (read after its ReLU: the units' firing) by a fixed rule, and does the same
for a randomly initialised copy of the network (the null: what the architecture gives with no
learning). A channel's response to an image is its **peak**: the largest firing anywhere in
its map, so a detector is found wherever the stimulus sits.

Probe families (all at the model's input size, minicnn/world.py draws the parts and textures):

    E  edge/colour  plain colours, step edges and thin lines at 8 orientations, two polarities
    V  curve        arcs of 3 radii at 8 orientations, two polarities
    T  texture      patches of each texture (brick, grass, wood, water, dots, stripes)
    P  part         one part alone on grey (wheel, eye, window, petal, spot, roof, hand)
    controls        each texture and part image with its pixels scrambled (same colours, no
                    structure: the part's pixels only among themselves)
    data            held-out images of the world, with their classes

With E, V, T, P the best peak over each family, T* and P* the scrambled versions of the best
texture and part image, and SI the class-selectivity index of Morcos et al. 2018 on the data,
SI = (mu_max - mu_rest) / (mu_max + mu_rest) (mean peak of the preferred class vs the mean of
the other classes' means), each channel gets the first label whose test it passes:

    dead        never fires on any probe or image
    object      SI >= 0.5 (its class drives it 3x the others) and the *typical* image of that
                class (mu_max) drives it more than any part shown alone (P): the whole object,
                not one of its parts, is what it answers
    part        P > max(E, V, T) and P >= 1.25 P*     (a part beats everything simpler, and
                                                       its structure matters, not its colours)
                and the best part image fits inside the receptive field (a unit cannot
                detect a part it cannot see whole)
    texture     T > max(E, V, P) and T >= 1.25 T*
    curve       a curve detector by ``minicnn.curves`` (score >= 0.3, above its random null)
    edge/colour 1.25 L >= max(V, T, P), with L = max(E, T*, P*): colours, edges or colour
                noise explain the channel about as well as anything structured does
    other       none of these

The thresholds (0.5, 1.25) were fixed before any trained model was measured. Two clauses were
added after a first look at a trial model, each closing a hole in the definitions rather than
moving a threshold (tutorial.md, chapter 9, gives the numbers of both versions): the part's
fit inside the receptive field (without it, 38% of relu1_2's 5-pixel units counted as part
detectors), and the object test's comparison with parts alone instead of with every probe
(full-field step edges, half black and half white, drove deep units harder than any real
image, so no class-selective unit of relu4_1 could pass). A shared part
(wheel, eye, window) has a **named detector** when a channel labelled part, whose best part
probe is that part, puts its peak on that part (its receptive-field centre inside the part's
mask, grown by the layer's stride) in at least half the held-out images of every class that
has the part: a wheel unit must find car wheels and bicycle wheels alike.

    python -m minicnn.hierarchy                  # the world model: table, figure, --json
"""
import numpy as np

from .. import curves, world
from ..backend import to_device, to_numpy
from ..curves import stimuli

LABELS = ("edge/colour", "curve", "texture", "part", "object", "other", "dead")
SELECTIVITY = 0.5        # object: class selectivity index at least this
STRUCTURE = 1.25         # part / texture: beats its scrambled version by this factor
LOCALIZED = 0.5          # named part detector: peak on the part in this share of a class's images
PROBES_PER_KIND = 8      # instances of each texture and each part
HELD_OUT_SEED = 50_000   # the held-out images; never used for training (train uses 1000*seed + 1, + 2)


# ------------------------------------------------------------------------------------------------
# Probes


def make_probes(size, seed=0):
    """All probe images (N, 3, size, size); for each, (family, name) with family in E, V, T,
    T*, P, P*; and the extent of each part (the longer side of its mask's bounding box, px; 0
    for the other probes). Scrambled images follow their originals one to one."""
    rng = np.random.default_rng(seed)
    images, info, extent = [], [], []
    centre = ((size - 1) / 2, (size - 1) / 2)
    for k in range(12):                                       # plain colours, then black and white
        images.append(np.broadcast_to(world.hsv(k / 12, 1.0, 0.9)[:, None, None], (3, size, size)))
        info.append(("E", "colour"))
    for grey in (0.0, 1.0):
        images.append(stimuli.blank(size, grey))
        info.append(("E", "colour"))
    for fg, bg in (stimuli.DARK_ON_LIGHT, stimuli.LIGHT_ON_DARK):
        for a in range(0, 360, 45):
            images.append(stimuli.edge(size, centre, a, fg, bg))
            info.append(("E", "edge"))
            images.append(stimuli.line(size, centre, a, 2.0, size * 0.6, fg, bg))
            info.append(("E", "line"))
            for r in (4, 8, 14):
                images.append(stimuli.arc(size, centre, r, a, 2.0, min(1.6 * np.pi * r, size * 0.8), fg, bg))
                info.append(("V", "arc"))
    for name in world.TEXTURES:
        for _ in range(PROBES_PER_KIND):
            image = world.render_texture(name, rng, size)
            images += [image, world.scramble(image, np.ones((size, size), bool), rng)]
            info += [("T", name), ("T*", name)]
    extent += [0] * len(images)
    for name in world.LOOSE:
        for _ in range(PROBES_PER_KIND):
            image, mask = world.render_part(name, rng, size)
            images += [image, world.scramble(image, mask, rng)]
            info += [("P", name), ("P*", name)]
            rows, cols = np.nonzero(mask)
            extent += [max(np.ptp(rows), np.ptp(cols)) + 1] * 2
    return np.stack([np.asarray(i, np.float32) for i in images]), info, np.array(extent)


def conv_layers(net):
    """(conv layer, the layer read for its firing) for every conv layer, in order."""
    return [(layer.name, curves.firing_layer(net, layer.name)) for layer in net.layers if layer.kind == "conv"]


def peaks(net, images, batch=128):
    """{firing layer: (N, C) peak over positions} and {firing layer: (N, C) flat argmax}."""
    read = [firing for _, firing in conv_layers(net)]
    out = {name: [] for name in read}
    where = {name: [] for name in read}
    for k in range(0, len(images), batch):
        p = net.run(to_device(images[k:k + batch], net.device), until=read[-1], keep=set(read), record=False)
        for name in read:
            act = to_numpy(p.activations[name])
            flat = act.reshape(act.shape[0], act.shape[1], -1)
            out[name].append(flat.max(axis=2))
            where[name].append(flat.argmax(axis=2))
    return ({n: np.concatenate(v) for n, v in out.items()},
            {n: np.concatenate(v) for n, v in where.items()})


def selectivity(peak, labels, n_classes):
    """Class-selectivity index per channel (Morcos et al. 2018) and the preferred class:
    SI = (mu_max - mu_rest) / (mu_max + mu_rest) over the class means of the peak."""
    means = np.stack([peak[labels == c].mean(axis=0) for c in range(n_classes)])   # (classes, C)
    pref = means.argmax(axis=0)
    mu_max = means.max(axis=0)
    mu_rest = (means.sum(axis=0) - mu_max) / (n_classes - 1)
    si = np.where(mu_max > 0, (mu_max - mu_rest) / np.maximum(mu_max + mu_rest, 1e-12), 0.0)
    return si, pref, mu_max


# ------------------------------------------------------------------------------------------------
# The rule


def label_units(probe_peak, info, extent, data_peak, labels, n_classes, curve_flags, rf_size):
    """One label per channel by the rule of the module docstring, and the numbers behind it.

    probe_peak: (probes, C); info, extent: from ``make_probes``; data_peak: (images, C);
    curve_flags: (C,) bool, True for curve detectors; rf_size: the units' receptive field, px.
    Without held-out images (``data_peak`` None: a model with no world of its own, such as
    VGG16) there is no class selectivity, so no unit is labelled object or part.
    """
    family = np.array([f for f, _ in info])
    names = np.array([n for _, n in info])
    best = {f: probe_peak[family == f].max(axis=0) for f in ("E", "V", "T", "P")}
    scrambled = {}
    for f in ("T", "P"):
        orig, scr = probe_peak[family == f], probe_peak[family == f + "*"]   # one to one
        arg = orig.argmax(axis=0)
        scrambled[f] = scr[arg, np.arange(orig.shape[1])]
        scrambled[f + "_all"] = scr.max(axis=0)
        best[f + "_name"] = names[family == f][arg]
        best[f + "_extent"] = np.asarray(extent)[family == f][arg]
    world_known = data_peak is not None
    C = probe_peak.shape[1]
    si, pref, mu_max = selectivity(data_peak, labels, n_classes) if world_known else \
        (np.zeros(C), np.zeros(C, int), np.zeros(C))
    E, V, T, P = best["E"], best["V"], best["T"], best["P"]
    alive = np.maximum(probe_peak.max(axis=0), data_peak.max(axis=0) if world_known else 0) > 1e-6
    tests = [
        ("dead", ~alive),
        ("object", (si >= SELECTIVITY) & (mu_max > P) & world_known),
        ("part", (P > np.maximum.reduce([E, V, T])) & (P >= STRUCTURE * scrambled["P"])
         & (best["P_extent"] <= rf_size) & world_known),
        ("texture", (T > np.maximum.reduce([E, V, P])) & (T >= STRUCTURE * scrambled["T"])),
        ("curve", np.asarray(curve_flags, bool)),
        ("edge/colour", STRUCTURE * np.maximum.reduce([E, scrambled["T_all"], scrambled["P_all"]])
         >= np.maximum.reduce([V, T, P])),
    ]
    label = np.full(probe_peak.shape[1], "other", dtype=object)
    undecided = np.ones(probe_peak.shape[1], bool)
    for name, passed in tests:
        label[undecided & passed] = name
        undecided &= ~passed
    return [{"channel": c, "label": label[c], "selectivity": float(si[c]),
             "preferred_class": int(pref[c]), "class_mean": float(mu_max[c]),
             "edge": float(E[c]), "curve": float(V[c]), "texture": float(T[c]), "part": float(P[c]),
             "texture_scrambled": float(scrambled["T"][c]), "part_scrambled": float(scrambled["P"][c]),
             "best_texture": str(best["T_name"][c]), "best_part": str(best["P_name"][c]),
             "best_part_extent": int(best["P_extent"][c]),
             "curve_detector": bool(curve_flags[c])}
            for c in range(probe_peak.shape[1])]


def profile(units):
    """{label: fraction of channels} for one layer."""
    return {name: sum(u["label"] == name for u in units) / len(units) for name in LABELS}


# ------------------------------------------------------------------------------------------------
# Named part detectors: does a part unit find that part in every class that has it?


def part_classes(labels, parts, n_classes):
    """{part name: [classes whose images contain it in at least half their images]}."""
    out = {}
    for name in world.SHARED_PARTS:
        pid = world.PARTS.index(name) + 1
        present = (parts == pid).any(axis=(1, 2))
        out[name] = [c for c in range(n_classes) if present[labels == c].mean() >= 0.5]
    return out


def localization(net, firing, channel, where, labels, parts, part_name, classes):
    """For each class: the share of its images in which the channel's peak falls on the part
    (the unit's receptive-field centre inside the part mask grown by the layer's stride)."""
    size, stride, offset = net.receptive_field(firing)
    _, h, w = net.output_shape(firing)
    pid = world.PARTS.index(part_name) + 1
    grow = max(1, stride)
    out = {}
    for c in classes:
        hits = []
        for n in np.flatnonzero(labels == c):
            i, j = divmod(int(where[n, channel]), w)
            y = int(round(offset + i * stride + (size - 1) / 2))
            x = int(round(offset + j * stride + (size - 1) / 2))
            y0, y1 = max(0, y - grow), min(parts.shape[1], y + grow + 1)
            x0, x1 = max(0, x - grow), min(parts.shape[2], x + grow + 1)
            hits.append(bool((parts[n, y0:y1, x0:x1] == pid).any()))
        out[c] = float(np.mean(hits))
    return out


def named_part_detectors(net, layers, data_where, labels, parts, n_classes):
    """For each shared part: the channel (any layer) labelled part, preferring that part,
    with the best worst-class localization; ``named`` when that is >= LOCALIZED."""
    classes_of = part_classes(labels, parts, n_classes)
    found = {}
    for part_name, classes in classes_of.items():
        best = None
        for firing, units in layers.items():
            for u in units:
                if u["label"] != "part" or u["best_part"] != part_name:
                    continue
                loc = localization(net, firing, u["channel"], data_where[firing], labels, parts, part_name, classes)
                worst = min(loc.values())
                if best is None or worst > best["worst"]:
                    best = {"layer": firing, "channel": u["channel"], "worst": worst,
                            "per_class": {net.class_names[c]: v for c, v in loc.items()}}
        found[part_name] = dict(best or {}, classes=[net.class_names[c] for c in classes],
                                named=bool(best and best["worst"] >= LOCALIZED))
    return found


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
# The figure

COLOURS = {"edge/colour": "#4c72b0", "curve": "#55a868", "texture": "#ccb974", "part": "#dd8452",
           "object": "#c44e52", "other": "#cccccc", "dead": "#555555"}
STRENGTH = {"edge/colour": lambda u: u["edge"], "curve": lambda u: u["curve"],
            "texture": lambda u: u["texture"] / max(u["texture_scrambled"], 1e-6),
            "part": lambda u: u["part"] / max(u["part_scrambled"], 1e-6),
            "object": lambda u: u["selectivity"], "other": lambda u: 0.0, "dead": lambda u: 0.0}


def block_examples(result, per_block=3):
    """For the last conv layer of each block: its most common label (dead and other aside) and
    the ``per_block`` channels that show it most clearly; then the named part detectors."""
    layers = result["layers"]
    last = {}
    for firing in layers:                        # relu3_2 -> block "3": keep the last of each
        last[firing[len("relu"):].split("_")[0]] = firing
    rows = []
    for block, firing in last.items():
        units = layers[firing]
        counts = {name: sum(u["label"] == name for u in units) for name in LABELS[:5]}
        label = max(counts, key=counts.get)
        chosen = sorted((u for u in units if u["label"] == label), key=lambda u: -STRENGTH[label](u))
        rows.append((f"block {block} ({firing}): {label}", firing, [u["channel"] for u in chosen[:per_block]]))
    for part, found in result["named_parts"].items():
        if found.get("layer"):
            rows.append((f"{part} detector{'' if found['named'] else ' (candidate)'} ({found['layer']})",
                         found["layer"], [found["channel"]]))
    return rows


def _profile_axes(ax, summary_):
    names = [entry["layer"] for entry in summary_["layers"]]
    x = np.arange(len(names))
    for offset, which in ((-0.2, "trained"), (0.2, "random")):
        bottom = np.zeros(len(names))
        for label in LABELS:
            share = np.array([entry[which][label] for entry in summary_["layers"]])
            ax.bar(x + offset, share, 0.38, bottom=bottom, color=COLOURS[label],
                   label=label if which == "trained" else None, edgecolor="white", linewidth=0.3)
            bottom += share
    ax.set_xticks(x)
    ax.set_xticklabels([f"{n}\ntrained | random" for n in names], fontsize=6)
    ax.set_ylabel("share of channels")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, ncol=7, loc="lower center", bbox_to_anchor=(0.5, 1.0))


def figure(net, result, summary_, images, path, per_block=3, top=3, vis_steps=128):
    """The layer profile (trained vs random, stacked bars), then one row per block: each
    example channel's feature visualization and the held-out images that excite it most, with
    the receptive field of the strongest unit boxed."""
    from matplotlib.patches import Rectangle

    from ..plotting import finish, new_figure
    from ..visualize import FourierParam, objectives, render
    from ..visualize.transforms import standard_transforms
    rows = block_examples(result, per_block)
    size = net.input_shape[1]
    cols = per_block * (1 + top)
    fig = new_figure(figsize=(cols * 0.95, 3.2 + len(rows) * 1.2))
    grid = fig.add_gridspec(len(rows) + 2, cols, height_ratios=[2.4, 0.5] + [1] * len(rows), hspace=0.5)
    _profile_axes(fig.add_subplot(grid[0, :]), summary_)
    for r, (title, firing, channels) in enumerate(rows, start=2):
        if not channels:
            continue
        vis, _, _ = render(net, objectives.neuron(firing, channels), FourierParam(), steps=vis_steps,
                           size=size, n_images=len(channels), transforms=standard_transforms(size))
        rf_size, stride, offset = net.receptive_field(firing)
        _, h, w = net.output_shape(firing)
        peak, where = result["data_peak"][firing], result["data_where"][firing]
        for k, channel in enumerate(channels):
            unit = next(u for u in result["layers"][firing] if u["channel"] == channel)
            ax = fig.add_subplot(grid[r, k * (1 + top)])
            ax.imshow(vis[k].transpose(1, 2, 0), interpolation="nearest")
            ax.set_title(f"{firing}:{channel} {unit['label']}", fontsize=6)
            ax.set_xticks([]), ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(title.replace(": ", ":\n"), fontsize=6, rotation=0, ha="right", va="center")
            for t, n in enumerate(np.argsort(-peak[:, channel], kind="stable")[:top]):
                ax = fig.add_subplot(grid[r, k * (1 + top) + 1 + t])
                ax.imshow(images[n].transpose(1, 2, 0), interpolation="nearest")
                i, j = divmod(int(where[n, channel]), w)
                ax.add_patch(Rectangle((offset + j * stride - 0.5, offset + i * stride - 0.5), rf_size, rf_size,
                                       fill=False, edgecolor="white", linewidth=1.2))
                ax.add_patch(Rectangle((offset + j * stride - 0.5, offset + i * stride - 0.5), rf_size, rf_size,
                                       fill=False, edgecolor="black", linewidth=0.5))
                ax.set_xlim(-0.5, size - 0.5), ax.set_ylim(size - 0.5, -0.5)
                ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("What the units of each layer detect: the share of each label per layer, trained vs a random "
                 "copy (top);\nexample channels per block: feature visualization, then the held-out images that "
                 "excite them most (receptive field boxed)", fontsize=8)
    return finish(fig, path)


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
