"""The probes of the hierarchy, and the units' answers to them: peaks over positions, class
selectivity (the families and what they show: ``minicnn.hierarchy.rule``)."""
import numpy as np

from .. import curves, world
from ..backend import to_device, to_numpy
from ..curves import stimuli

PROBES_PER_KIND = 8      # instances of each texture and each part
HUES = 12                # plain colours, evenly round the hue circle
ORIENTATIONS = 8         # gratings: orientations 0, 22.5, ... 157.5 degrees,
GRATING_PERIODS = (4, 8, 16)     # each at these periods (px)
HELD_OUT_SEED = 50_000   # the held-out images; never used for training (train uses 1000*seed + 1, + 2)


# ------------------------------------------------------------------------------------------------
# Probes


def make_probes(size, seed=0):
    """All probe images (N, 3, size, size); for each, (family, name) with family in E, G, V,
    T, T*, P, P* (E's hues come first, G's gratings orientation by orientation); and the extent of each part (the longer side of its mask's bounding box, px; 0
    for the other probes). Scrambled images follow their originals one to one."""
    rng = np.random.default_rng(seed)
    images, info, extent = [], [], []
    centre = ((size - 1) / 2, (size - 1) / 2)
    for k in range(HUES):                                     # plain colours round the hue circle,
        images.append(np.broadcast_to(world.hsv(k / HUES, 1.0, 0.9)[:, None, None], (3, size, size)))
        info.append(("E", "hue"))
    for grey in (0.0, 1.0):                                   # then black and white
        images.append(stimuli.blank(size, grey))
        info.append(("E", "grey"))
    y, x = np.mgrid[0:size, 0:size]
    for k in range(ORIENTATIONS):                             # gratings (their own family: G)
        a = np.pi * k / ORIENTATIONS
        for period in GRATING_PERIODS:
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * (x * np.cos(a) + y * np.sin(a)) / period)
            images.append(np.broadcast_to(wave, (3, size, size)))
            info.append(("G", "grating"))
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


def peaks(net, images, batch=128, read=None):
    """{firing layer: (N, C) peak over positions} and {firing layer: (N, C) flat argmax}, for
    every conv layer's firing layer, or for those in ``read`` (in network order)."""
    read = [firing for _, firing in conv_layers(net) if read is None or firing in read]
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
