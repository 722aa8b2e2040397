"""What feature visualization maximizes: objectives on a layer's activation.

An objective maps the activation ``act`` of one layer, for a batch of N images, to a score per
image and the gradient of the summed scores with respect to ``act``:

    score, dact = objective(act)        # score: (N,), dact: shaped like act

Each image in a batch can have its own target (a grid of 16 channels is one batch of 16).
"""
from .backend import get_xp


def channel(channels):
    """Mean activation of channel ``channels[n]`` over all positions, for image n.

    score_n = (1 / (h w)) sum_{i,j} act[n, c_n, i, j]   =>   d score_n / d act[n, c_n] = 1 / (h w)
    On a linear layer (N, D) the "channel" is one unit: score_n = act[n, c_n].
    """
    def objective(act):
        xp = get_xp(act)
        rows = xp.arange(act.shape[0])
        cols = xp.asarray(channels)
        dact = xp.zeros_like(act)
        if act.ndim == 2:
            dact[rows, cols] = 1.0
            return act[rows, cols], dact
        size = act.shape[2] * act.shape[3]
        dact[rows, cols] = 1.0 / size
        return act[rows, cols].mean(axis=(1, 2)), dact
    return objective


def neuron(channels, y=None, x=None):
    """One unit: channel ``channels[n]`` at position (y, x) (default: the centre)."""
    def objective(act):
        xp = get_xp(act)
        h, w = act.shape[2], act.shape[3]
        i, j = (h // 2 if y is None else y), (w // 2 if x is None else x)
        if not (0 <= i < h and 0 <= j < w):
            raise ValueError(f"neuron position ({i}, {j}) is outside the {h}x{w} map")
        rows = xp.arange(act.shape[0])
        cols = xp.asarray(channels)
        dact = xp.zeros_like(act)
        dact[rows, cols, i, j] = 1.0
        return act[rows, cols, i, j], dact
    return objective


def deepdream():
    """DeepDream (Mordvintsev, Olah & Tyka 2015): amplify whatever the layer already sees.

    score_n = (1/2) mean over channels and positions of act^2  =>  dact = act / (C h w)
    """
    def objective(act):
        size = act[0].size
        axes = tuple(range(1, act.ndim))
        return 0.5 * (act * act).sum(axis=axes) / size, act / size
    return objective
