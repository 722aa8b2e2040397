"""The rule that labels a unit: what do the units of each layer detect? (``python -m minicnn.hierarchy``)

The lesson's claim is a hierarchy: early layers detect edges and colours, middle layers
textures, curves and parts, late layers whole objects. This command labels every channel of
every conv layer (read after its ReLU: the units' firing) by a fixed rule, and does the same
for a randomly initialised copy of the network (the null: what the architecture gives with no
learning). A channel's response to an image is its **peak**: the largest firing anywhere in
its map, so a detector is found wherever the stimulus sits.

Probe families (all at the model's input size, minicnn/world.py draws the parts and textures):

    E  edge/colour  plain colours (12 hues, black, white), step edges and thin lines at 8
                    orientations, two polarities
    G  grating      black-and-white sine gratings, 8 orientations, periods 4, 8 and 16 px
    V  curve        arcs of 3 radii at 8 orientations, two polarities
    T  texture      patches of each texture (brick, grass, wood, water, dots, stripes)
    P  part         one part alone on grey (wheel, eye, window, petal, spot, roof, hand)
    controls        each texture and part image with its pixels scrambled (same colours, no
                    structure: the part's pixels only among themselves); each class's object
                    assembled and with its parts jumbled (``world.render_jumbled``)
    data            held-out images of the world, with their classes

With E, G, V, T, P the best peak over each family, T* and P* the scrambled versions of the best
texture and part image, and SI the class-selectivity index of Morcos et al. 2018 on the data,
SI = (mu_max - mu_rest) / (mu_max + mu_rest) (mean peak of the preferred class vs the mean of
the other classes' means), each channel gets the first label whose test it passes:

    dead        never fires on any probe or image
    object      SI >= 0.5 (its class drives it 3x the others), the *typical* image of that
                class (mu_max) drives it more than any part shown alone (P), and that class's
                objects assembled drive it at least 1.25x the same objects with their parts
                jumbled: the arrangement, not the sum of the parts, is what it answers.
                Without part maps (the shapes world, a model with no world) there is no
                jumbled control, so no unit is labelled object
    part        P > max(E, G, V, T) and P >= 1.25 P*  (a part beats everything simpler, and
                                                       its structure matters, not its colours)
                and the best part image fits inside the receptive field (a unit cannot
                detect a part it cannot see whole)
    texture     T > max(E, G, V, P) and T >= 1.25 T*
    curve       a curve detector by ``minicnn.curves`` (score >= 0.3, above its random null)
    edge/colour tuned to orientation or to hue more than the null allows -- the vector
                strength of its answers to the gratings' orientations, or to the hues, above
                the 97.5th percentile of the same layer's units in randomly initialised
                copies -- and 1.25 L >= max(V, T, P), with L = max(E, G, T*, P*): simple
                stimuli explain it about as well as anything structured does
    unlabelled  none of these

Vector strength: for answers r_k at K evenly spaced angles a_k round a circle (hues round the
colour circle; orientations doubled, as 0 and 180 degrees are one orientation),
|sum_k r_k exp(i a_k)| / sum_k r_k: 0 when the unit answers every angle alike, 1 when it
answers one only.

The thresholds (0.5, 1.25) were fixed before any trained model was measured. Two clauses were
added after a first look at a trial model, each closing a hole in the definitions rather than
moving a threshold (tutorial.md, chapter 9, gives the numbers of both versions): the part's
fit inside the receptive field (without it, 38% of relu1_2's 5-pixel units counted as part
detectors), and the object test's comparison with parts alone instead of with every probe
(full-field step edges, half black and half white, drove deep units harder than any real
image, so no class-selective unit of relu4_1 could pass). Two controls were added later (issue
31): edge/colour was the label of whatever passed nothing else, and is now a positive test
against the random null; the object test gained the jumbled-parts control. A shared part
(wheel, eye, window) has a **named detector** when a channel labelled part, whose best part
probe is that part, puts its peak on that part (its receptive-field centre inside the part's
mask, grown by the layer's stride) in at least half the held-out images of every class that
has the part: a wheel unit must find car wheels and bicycle wheels alike.

    python -m minicnn.hierarchy                  # the world model: table, figure, --json
"""
import numpy as np

from .probes import ORIENTATIONS

LABELS = ("edge/colour", "curve", "texture", "part", "object", "unlabelled", "dead")
SELECTIVITY = 0.5        # object: class selectivity index at least this
STRUCTURE = 1.25         # part / texture / object: beats its scrambled (jumbled) version by this factor
NULL_QUANTILE = 0.975    # edge/colour: orientation or hue tuning above this quantile of the null


# ------------------------------------------------------------------------------------------------
# The rule


def selectivity(peak, labels, n_classes):
    """Class-selectivity index per channel (Morcos et al. 2018) and the preferred class:
    SI = (mu_max - mu_rest) / (mu_max + mu_rest) over the class means of the peak."""
    means = np.stack([peak[labels == c].mean(axis=0) for c in range(n_classes)])   # (classes, C)
    pref = means.argmax(axis=0)
    mu_max = means.max(axis=0)
    mu_rest = (means.sum(axis=0) - mu_max) / (n_classes - 1)
    si = np.where(mu_max > 0, (mu_max - mu_rest) / np.maximum(mu_max + mu_rest, 1e-12), 0.0)
    return si, pref, mu_max


def vector_strength(r):
    """|sum_k r_k exp(2 pi i k / K)| / sum_k r_k per channel, for answers r (K, C) at K evenly
    spaced angles; 0 for a channel that never answers."""
    angle = 2 * np.pi * np.arange(len(r)) / len(r)
    total = r.sum(axis=0)
    resultant = np.hypot(np.cos(angle) @ r, np.sin(angle) @ r)
    return np.where(total > 0, resultant / np.maximum(total, 1e-12), 0.0)


def tuning(probe_peak, info):
    """(orientation tuning, hue tuning) per channel: the vector strength of its best answer
    at each grating orientation (over the periods), and of its answers to the hues."""
    family = np.array([f for f, _ in info])
    names = np.array([n for _, n in info])
    gratings = probe_peak[family == "G"]
    by_angle = gratings.reshape(ORIENTATIONS, -1, gratings.shape[1]).max(axis=1)
    return vector_strength(by_angle), vector_strength(probe_peak[(family == "E") & (names == "hue")])


def tuning_null(probe_peaks, info):
    """The thresholds of the edge/colour test from the probe peaks (probes, C) of one layer in
    one or more random copies: the NULL_QUANTILE quantile of their units' orientation and hue
    tuning, {"orientation": t, "hue": t}."""
    both = [tuning(p, info) for p in probe_peaks]
    return {"orientation": float(np.quantile(np.concatenate([o for o, _ in both]), NULL_QUANTILE)),
            "hue": float(np.quantile(np.concatenate([h for _, h in both]), NULL_QUANTILE))}


def label_units(probe_peak, info, extent, data_peak, labels, n_classes, curve_flags, rf_size, null, jumbled=None):
    """One label per channel by the rule of the module docstring, and the numbers behind it.

    probe_peak: (probes, C); info, extent: from ``make_probes``; data_peak: (images, C);
    curve_flags: (C,) bool, True for curve detectors; rf_size: the units' receptive field, px;
    null: the layer's ``tuning_null``; jumbled: (assembled peak (M, C), jumbled peak (M, C),
    their classes (M,)) from ``world.make_jumbled``, or None (then no unit is labelled object).
    Without held-out images (``data_peak`` None: a model with no world of its own, such as
    VGG16) there is no class selectivity, so no unit is labelled object or part.
    """
    family = np.array([f for f, _ in info])
    names = np.array([n for _, n in info])
    best = {f: probe_peak[family == f].max(axis=0) for f in ("E", "G", "V", "T", "P")}
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
    E, G, V, T, P = best["E"], best["G"], best["V"], best["T"], best["P"]
    orientation, hue = tuning(probe_peak, info)
    if jumbled is not None:
        assembled_peak, jumbled_peak, jumbled_labels = jumbled
        own = jumbled_labels[:, None] == pref[None, :]                    # (M, C): the preferred class's
        count = np.maximum(own.sum(axis=0), 1)
        assembled, moved = ((peak * own).sum(axis=0) / count for peak in (assembled_peak, jumbled_peak))
    else:
        assembled = moved = np.zeros(C)
    alive = np.maximum(probe_peak.max(axis=0), data_peak.max(axis=0) if world_known else 0) > 1e-6
    candidate = (si >= SELECTIVITY) & (mu_max > P) & world_known
    tests = [
        ("dead", ~alive),
        ("object", candidate & (jumbled is not None) & (assembled >= STRUCTURE * moved)),
        ("part", (P > np.maximum.reduce([E, G, V, T])) & (P >= STRUCTURE * scrambled["P"])
         & (best["P_extent"] <= rf_size) & world_known),
        ("texture", (T > np.maximum.reduce([E, G, V, P])) & (T >= STRUCTURE * scrambled["T"])),
        ("curve", np.asarray(curve_flags, bool)),
        ("edge/colour", ((orientation > null["orientation"]) | (hue > null["hue"]))
         & (STRUCTURE * np.maximum.reduce([E, G, scrambled["T_all"], scrambled["P_all"]])
            >= np.maximum.reduce([V, T, P]))),
    ]
    label = np.full(C, "unlabelled", dtype=object)
    undecided = np.ones(C, bool)
    for name, passed in tests:
        label[undecided & passed] = name
        undecided &= ~passed
    return [{"channel": c, "label": label[c], "selectivity": float(si[c]),
             "preferred_class": int(pref[c]), "class_mean": float(mu_max[c]),
             "edge": float(E[c]), "grating": float(G[c]), "curve": float(V[c]), "texture": float(T[c]),
             "part": float(P[c]), "texture_scrambled": float(scrambled["T"][c]),
             "part_scrambled": float(scrambled["P"][c]),
             "orientation_tuning": float(orientation[c]), "hue_tuning": float(hue[c]),
             "object_candidate": bool(candidate[c]),
             "assembled": float(assembled[c]), "jumbled": float(moved[c]),
             "best_texture": str(best["T_name"][c]), "best_part": str(best["P_name"][c]),
             "best_part_extent": int(best["P_extent"][c]),
             "curve_detector": bool(curve_flags[c])}
            for c in range(C)]


def profile(units):
    """{label: fraction of channels} for one layer."""
    return {name: sum(u["label"] == name for u in units) / len(units) for name in LABELS}
