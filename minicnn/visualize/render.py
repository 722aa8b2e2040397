"""The render loop of feature visualization: gradient ascent on the image, every step written out.

    images, history, snapshots = render(net, objectives.channel("conv3_3", [5]), FourierParam(), size=128)
"""
from warnings import warn

import numpy as np

from ..backend import get_xp, to_device, to_numpy, xp_for
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


def ascent_gradient(net, objective, param, params, transforms, rng, relu=None):
    """One step's chain, forward and back: (the objective per image, d (sum of the objectives)
    / d params, the pixel gradient that came back through the network or None).

    params -> pixels -> random transforms (their draws from ``rng``) -> forward to the deepest
    layer the objective reads -> objective -> its gradients, injected at their layers on the
    way back to the pixels -> adjoints of the transforms -> plus the gradient of the terms on
    the image itself (regularizers) -> through the parameterization. ``relu``: the ReLU rule of
    the backward pass (``redirected_relu``), or None for the true gradient.
    """
    xp = get_xp(params)
    layers = [layer for layer in objective.layers if layer != INPUT]
    deepest = max(layers, key=net.position) if layers else None
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
    dacts = objective.backward(xp.ones(len(pixels), dtype=pixels.dtype), objective_cache)
    through_net = None
    if deepest is None:                  # only terms on the image itself (regularizers)
        dx = xp.zeros_like(pixels)
    else:
        inject = {layer: dacts[layer] for layer in layers if layer != deepest}
        dx = through_net = p.backward(dacts[deepest], relu=relu, inject=inject)
        for t, cache in zip(reversed(transforms), reversed(caches)):
            dx = t.backward(dx, cache)
    if INPUT in dacts:
        dx = dx + dacts[INPUT]
    return score, param.backward(dx, param_cache), through_net


def render(net, objective, param, steps=512, lr=0.05, seed=0, transforms=(), size=None,
           n_images=1, blur_every=0, optimizer="adam", redirect_relu=True, init=None, progress=None,
           snapshot_every=0, interruptible=False):
    """Optimize ``n_images`` images at once so that ``objective`` grows.

    Each step: ``ascent_gradient`` (params -> pixels -> transforms -> network -> objective, and
    back), then one optimizer step (ascent). Every stage is a ``forward`` that returns (out,
    cache) and a ``backward(dout, cache)``. Returns (pixels (N, 3, size, size) as numpy, the mean score
    after each step, snapshots). With ``interruptible``, Ctrl-C ends the loop early and the
    images so far are returned (``len(history)`` says how many steps were taken).
    """
    if size is None:
        raise ValueError("render needs the image size in pixels (size=...)")
    rng = np.random.default_rng(seed)
    xp = xp_for(net.device)
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
            score, grad, through_net = ascent_gradient(net, objective, param, params, transforms, rng, relu)
            if step == REDIRECT_STEPS and through_net is not None and not bool((through_net != 0).any()):
                warn("the gradient is exactly 0: every path to this unit is switched off (dead ReLUs); "
                     "try the pre-ReLU layer, another seed, or a larger --lr")
            opt.step([grad])
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
