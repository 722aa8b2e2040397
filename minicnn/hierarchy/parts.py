"""Named part detectors: does a part unit find its part in every class that has it?"""
import numpy as np

from .. import world

LOCALIZED = 0.5          # named part detector: peak on the part in this share of a class's images


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
