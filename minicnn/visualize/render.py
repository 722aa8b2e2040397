"""The render loop of feature visualization: gradient ascent on the image, every step written out.

    images, history, snapshots = render(net, objectives.channel("conv3_3", [5]), FourierParam())
"""
import math
from warnings import warn

import numpy as np

from ..backend import get_xp, to_device, to_numpy, xp_for
from ..errors import UsageError
from ..optim import SGD, Adam
from .objectives import INPUT
from .transforms import blur

REDIRECT_STEPS = 16


def redirected_relu(dout, out):
    """Lucid's "redirected" ReLU gradient, feature visualization's remedy for dead ReLUs; given
    to the backward pass as its ReLU rule (``backward(..., relu=redirected_relu)``).

    When every unit of this ReLU is off (out = 0) for an image, the true gradient is zero and
    gradient ascent is stuck on a grey image. For such an image only, let the gradient through
    wherever it would push the input *up* (dout > 0), so the units can come back to life; once
    any unit is on, the true gradient is used again.
    """
    xp = get_xp(dout)
    plain = dout * (out > 0)
    dead = ~plain.reshape(len(plain), -1).any(axis=1)           # (N,): nothing got through
    if not bool(dead.any()):
        return plain
    redirected = dout * ((out > 0) | (dout > 0))
    return xp.where(dead.reshape((-1,) + (1,) * (dout.ndim - 1)), redirected, plain)


def render(net, objective, param, steps=512, lr=0.05, seed=0, transforms=(), size=None,
           n_images=1, blur_every=0, optimizer="adam", redirect_relu=True, init=None, progress=None,
           snapshot_every=0, interruptible=False):
    """Optimize ``n_images`` images at once so that ``objective`` grows.

    Each step: params -> pixels -> random transforms -> preprocess -> forward to the deepest
    layer the objective reads -> objective -> its gradients, injected at their layers on the
    way back to the input -> adjoints of preprocess and transforms -> plus the gradient of the
    terms on the image itself (regularizers) -> through the parameterization -> one optimizer
    step (ascent). Every stage is a ``forward`` that returns (out, cache) and a
    ``backward(dout, cache)``. Returns (pixels (N, 3, size, size) as numpy, the mean score
    after each step, snapshots). With ``interruptible``, Ctrl-C ends the loop early and the
    images so far are returned (``len(history)`` says how many steps were taken).
    """
    if size is None:
        raise ValueError("render needs the image size in pixels (size=...)")
    rng = np.random.default_rng(seed)
    xp = xp_for(net.device)
    layers = [layer for layer in objective.layers if layer != INPUT]
    deepest = max(layers, key=net.position) if layers else None
    params = param.init(n_images, size, rng, xp)
    if init is not None:                     # DeepDream: start from a real image
        params = xp.asarray(init, dtype=xp.float32).copy()
    opt = (Adam([params], lr=lr, sign=+1) if optimizer == "adam"
           else SGD([params], lr=lr, momentum=0.0, sign=+1))
    scores, snapshots = [], []
    try:   # Ctrl-C: with interruptible, stop here and keep the images so far
        for step in range(steps):
            # Lucid's remedy for dead ReLUs: redirected ReLU gradients for the first 16 steps only
            relu = redirected_relu if redirect_relu and step < REDIRECT_STEPS else None
            pixels, param_cache = param.forward(params)
            x, caches = pixels, []
            for t in transforms:
                x, cache = t.forward(x, rng)
                caches.append(cache)
            acts = {INPUT: pixels}
            if deepest is not None:
                p = net.run(x, until=deepest, keep=set(layers))
                acts.update(p.activations)
            score, objective_cache = objective.forward(acts)
            dacts = objective.backward(xp.ones(n_images, dtype=pixels.dtype), objective_cache)
            if deepest is None:                  # only terms on the image itself (regularizers)
                dx = xp.zeros_like(pixels)
            else:
                inject = {layer: dacts[layer] for layer in layers if layer != deepest}
                dx = p.backward(dacts[deepest], relu=relu, inject=inject)
                if step == REDIRECT_STEPS and not bool((dx != 0).any()):
                    warn("the gradient is exactly 0: every path to this unit is switched off (dead ReLUs); "
                         "try the pre-ReLU layer, another seed, or a larger --lr")
                for t, cache in zip(reversed(transforms), reversed(caches)):
                    dx = t.backward(dx, cache)
            if INPUT in dacts:
                dx = dx + dacts[INPUT]
            opt.step([param.backward(dx, param_cache)])
            param.project(params)
            if blur_every and param.name == "pixel" and (step + 1) % blur_every == 0:
                params[...] = blur(params)
            scores.append(score.mean())          # stays on the device: no wait for the GPU here
            if snapshot_every and (step % snapshot_every == 0 or step == steps - 1):
                snapshots.append(to_numpy(param.forward(params)[0]))
            if progress is not None:
                if step % 16 == 0 or step == steps - 1:
                    progress.set_postfix(score=f"{float(scores[-1]):.3g}")
                progress.update(1)
    except KeyboardInterrupt:
        if not interruptible:
            raise
    history = [float(v) for v in to_numpy(xp.stack(scores))] if scores else []
    return to_numpy(param.forward(params)[0]), history, snapshots


def channel_activations(net, layer, pixels):
    """Mean activation of every channel of ``layer`` for each image: (N, channels)."""
    act = to_numpy(net.forward(to_device(pixels, net.device), until=layer))
    return act if act.ndim == 2 else act.mean(axis=(2, 3))


def grid_image(images, gap=2):
    """(N, 3, H, W) -> one (rows*H, cols*W, 3) picture, as square as possible, grey gaps."""
    N, _, H, W = images.shape
    cols = math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    canvas = np.full((rows * (H + gap) - gap, cols * (W + gap) - gap, 3), 0.5, dtype=np.float32)
    for k in range(N):
        r, c = divmod(k, cols)
        canvas[r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = images[k].transpose(1, 2, 0)
    return canvas


def labelled_grid(images, labels, min_tile=128, gap=4):
    """A grid picture for people: each (3, S, S) image enlarged by an integer factor with
    nearest-neighbour copies (no smoothing invents detail) to at least ``min_tile`` px, with its
    label written above it. (H, W, 3) floats in [0, 1]."""
    from PIL import Image, ImageDraw
    factor = max(1, math.ceil(min_tile / images.shape[2]))
    big = images.repeat(factor, axis=2).repeat(factor, axis=3)
    strip = 14                                              # px of label above each tile
    tiles = np.full((len(big), 3, big.shape[2] + strip, big.shape[3]), 1.0, dtype=np.float32)
    tiles[:, :, strip:] = big
    picture = Image.fromarray((grid_image(tiles, gap) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    cols = math.ceil(math.sqrt(len(big)))
    for k, label in enumerate(labels):
        r, c = divmod(k, cols)
        draw.text((c * (tiles.shape[3] + gap) + 2, r * (tiles.shape[2] + gap) + 1), str(label)[:40], fill=(0, 0, 0))
    return np.asarray(picture, dtype=np.float32) / 255


def default_setup(net, layer, size=None):
    """The defaults of a visualization of ``layer``: (size, transforms, L2 weight, linear).

    Conv layers: Lucent's 128 px (a quarter of 224's cost; twice a small model's input, at most
    128) and Lucid's standard transforms, no L2. Layers after the flatten (class models) need
    exactly the model's input size; they get small circular shifts and Simonyan et al.'s L2
    penalty (1e-3)."""
    from .transforms import Roll, standard_transforms
    first_flat = next((i for i, l in enumerate(net.layers) if l.kind in ("flatten", "linear")), len(net.layers))
    linear = net.position(layer) >= first_flat
    size = size or (net.input_shape[1] if linear else min(128, net.input_shape[1] * 2))
    if linear and size != net.input_shape[1]:
        raise UsageError(f"{layer} comes after the flatten: the image must be {net.input_shape[1]} px")
    if linear:
        return size, [Roll(max(1, size // 28))], 1e-3, True
    return size, standard_transforms(size), 0.0, False


def parse_channels(spec, count):
    """'5', '0-15', '1,4,9' or '0-3,8' -> a list of channel indices, each checked against the
    layer's ``count`` channels before any list is built (so '0-9999999999' costs nothing)."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("-") and part[1:].isdigit():
            raise UsageError(f"channel {part} does not exist: channels are numbered 0..{count - 1}")
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise UsageError(f"bad channel {part!r} (use an index, a list 1,4,9 or a range 0-15)")
        lo, hi = int(lo), int(hi) if dash else int(lo)
        if lo > hi:
            raise UsageError(f"bad channel range {part!r} (use e.g. 0-15)")
        if hi >= count:
            raise UsageError(f"channel {hi} does not exist: the layer has channels 0..{count - 1}")
        out += list(range(lo, hi + 1))
        if len(out) > 256:
            raise UsageError("give between 1 and 256 channels")
    if not out:
        raise UsageError("give between 1 and 256 channels")
    return out
