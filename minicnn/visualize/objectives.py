"""What feature visualization maximizes: objectives on the activations of named layers.

An objective knows the layers it reads, and follows the convention of everything with a
gradient in minicnn (layers, parameterizations, transforms):

    score, cache = objective.forward(acts)      # acts: {layer name: activation (N, ...)}
    dacts = objective.backward(dscore, cache)   # {layer name: d (sum_n dscore_n score_n) / d act}

``score`` has one value per image: each image of a batch can have its own target (a grid of 16
channels is one batch of 16). The layer name ``INPUT`` stands for the image itself (the pixels
before the random transforms): regularizers are objectives on it.

Objectives add up like numbers (Lucid's and Lucent's notation): a sum, a difference or a
scalar multiple of objectives is an objective, whose layers are all of its terms' layers.

    channel("conv3_3", [5]) - 1e-2 * diversity("conv3_3")
    channel("fc6", [3]) - 1e-3 * l2()
"""
from ..backend import get_xp

INPUT = "input"


class Objective:
    """Base class: ``layers`` it reads; ``forward`` and ``backward`` as in the module docstring."""
    layers = ()

    def forward(self, acts):
        raise NotImplementedError

    def backward(self, dscore, cache):
        raise NotImplementedError

    def __add__(self, other):
        return Sum([(1.0, self), (1.0, other)])

    def __sub__(self, other):
        return Sum([(1.0, self), (-1.0, other)])

    def __neg__(self):
        return Sum([(-1.0, self)])

    def __mul__(self, weight):
        if not isinstance(weight, (int, float)):
            return NotImplemented
        return Sum([(float(weight), self)])

    __rmul__ = __mul__


class Sum(Objective):
    """sum_k weight_k * term_k: its gradient is each term's, scaled by its weight, added up."""

    def __init__(self, terms):
        self.terms = []
        for weight, term in terms:          # flatten nested sums: a - b + c is one list
            if isinstance(term, Sum):
                self.terms += [(weight * w, t) for w, t in term.terms]
            else:
                self.terms.append((weight, term))
        self.layers = tuple(dict.fromkeys(layer for _, t in self.terms for layer in t.layers))

    def forward(self, acts):
        score, caches = 0.0, []
        for weight, term in self.terms:
            s, cache = term.forward(acts)
            score = score + weight * s
            caches.append(cache)
        return score, caches

    def backward(self, dscore, cache):
        grads = {}
        for (weight, term), c in zip(self.terms, cache):
            for layer, g in term.backward(weight * dscore, c).items():
                grads[layer] = grads[layer] + g if layer in grads else g
        return grads


def _per_image(dscore, act):
    """dscore (N,) shaped to broadcast over one image's activation, in its dtype."""
    xp = get_xp(act)
    return xp.asarray(dscore, dtype=act.dtype).reshape((-1,) + (1,) * (act.ndim - 1))


class channel(Objective):
    """Mean activation of channel ``channels[n]`` over all positions, for image n.

    score_n = (1 / (h w)) sum_{i,j} act[n, c_n, i, j]   =>   d score_n / d act[n, c_n] = 1 / (h w)
    On a linear layer (N, D) the "channel" is one unit: score_n = act[n, c_n].
    """

    def __init__(self, layer, channels):
        self.layers, self.channels = (layer,), list(channels)

    def forward(self, acts):
        act = acts[self.layers[0]]
        xp = get_xp(act)
        rows, cols = xp.arange(act.shape[0]), xp.asarray(self.channels)
        score = act[rows, cols] if act.ndim == 2 else act[rows, cols].mean(axis=(1, 2))
        return score, (act.shape, act.dtype, xp)

    def backward(self, dscore, cache):
        shape, dtype, xp = cache
        dact = xp.zeros(shape, dtype=dtype)
        rows, cols = xp.arange(shape[0]), xp.asarray(self.channels)
        size = 1 if len(shape) == 2 else shape[2] * shape[3]
        d = xp.asarray(dscore, dtype=dtype) / size
        dact[rows, cols] = d if len(shape) == 2 else d[:, None, None]
        return {self.layers[0]: dact}


class neuron(Objective):
    """One unit: channel ``channels[n]`` at position (y, x) (default: the centre)."""

    def __init__(self, layer, channels, y=None, x=None):
        self.layers, self.channels, self.y, self.x = (layer,), list(channels), y, x

    def _position(self, shape):
        h, w = shape[2], shape[3]
        i, j = (h // 2 if self.y is None else self.y), (w // 2 if self.x is None else self.x)
        if not (0 <= i < h and 0 <= j < w):
            raise ValueError(f"neuron position ({i}, {j}) is outside the {h}x{w} map")
        return i, j

    def forward(self, acts):
        act = acts[self.layers[0]]
        xp = get_xp(act)
        i, j = self._position(act.shape)
        return act[xp.arange(act.shape[0]), xp.asarray(self.channels), i, j], (act.shape, act.dtype, xp)

    def backward(self, dscore, cache):
        shape, dtype, xp = cache
        i, j = self._position(shape)
        dact = xp.zeros(shape, dtype=dtype)
        dact[xp.arange(shape[0]), xp.asarray(self.channels), i, j] = xp.asarray(dscore, dtype=dtype)
        return {self.layers[0]: dact}


class deepdream(Objective):
    """DeepDream (Mordvintsev, Olah & Tyka 2015): amplify whatever the layer already sees.

    score_n = (1/2) mean over channels and positions of act^2  =>  dact = act / (C h w)
    """

    def __init__(self, layer):
        self.layers = (layer,)

    def forward(self, acts):
        act = acts[self.layers[0]]
        size, axes = act[0].size, tuple(range(1, act.ndim))
        return 0.5 * (act * act).sum(axis=axes) / size, act

    def backward(self, dscore, act):
        return {self.layers[0]: act / act[0].size * _per_image(dscore, act)}


class diversity(Objective):
    """Diversity of a batch (Olah, Mordvintsev & Schubert 2017, "Feature Visualization"; Lucid's
    ``objectives.diversity``): how alike the images' styles are at ``layer``, to be subtracted.

    Image n's style is the Gram matrix of its channels, G_n = A_n A_n^T (A_n: C x hw), scaled
    to unit length: g_n = G_n / |G_n|. score_n = (1/N) sum_{m != n} <g_n, g_m>, so the sum over
    the batch is Lucid's value. The gradient, step by step (S = sum_m g_m):

        d sum / d g_n = (2/N) (S - g_n)            (each pair appears twice)
        d G_n = (d g_n - g_n <g_n, d g_n>) / |G_n|  (through the normalisation)
        d A_n = (d G_n + d G_n^T) A_n               (through the Gram matrix)

    ``group``: the batch is consecutive groups of this many images, each pushed apart only
    from its own group (four renders of each of several channels in one batch); default:
    the whole batch is one group.
    """

    def __init__(self, layer, group=None):
        self.layers, self.group = (layer,), group

    def _groups(self, n):
        size = self.group or n
        if n % size:
            raise ValueError(f"a batch of {n} images does not split into groups of {size}")
        return [slice(k, k + size) for k in range(0, n, size)]

    def forward(self, acts):
        act = acts[self.layers[0]]
        xp = get_xp(act)
        parts = [_diversity_forward(act[g]) for g in self._groups(len(act))]
        return xp.concatenate([score for score, _ in parts]), [cache for _, cache in parts]

    def backward(self, dscore, cache):
        xp = get_xp(cache[0][0])
        dscore = xp.asarray(dscore)
        groups = self._groups(len(dscore))
        return {self.layers[0]: xp.concatenate([_diversity_backward(dscore[g], c) for g, c in zip(groups, cache)])}


def _diversity_forward(act):
    """One group's diversity scores (N,) and the cache of its backward."""
    xp = get_xp(act)
    N, C = act.shape[:2]
    A = act.reshape(N, C, -1)
    G = A @ A.transpose(0, 2, 1)                                    # (N, C, C)
    norm = xp.maximum(xp.sqrt((G * G).sum(axis=(1, 2))), 1e-10)     # (N,)
    g = G / norm[:, None, None]
    total = g.sum(axis=0)
    score = ((g * total[None]).sum(axis=(1, 2)) - (g * g).sum(axis=(1, 2))) / N
    return score, (act, A, g, norm, total)


def _diversity_backward(dscore, cache):
    act, A, g, norm, total = cache
    xp = get_xp(act)
    N = act.shape[0]
    dscore = xp.asarray(dscore, dtype=act.dtype)
    # score_n depends on every g_m: d (sum_n dscore_n score_n) / d g_m
    #   = (1/N) [sum_{n != m} dscore_n g_n + dscore_m (S - g_m)]
    weighted = (dscore[:, None, None] * g).sum(axis=0)
    dg = (weighted[None] - dscore[:, None, None] * g + dscore[:, None, None] * (total[None] - g)) / N
    dG = (dg - g * (g * dg).sum(axis=(1, 2))[:, None, None]) / norm[:, None, None]
    dA = (dG + dG.transpose(0, 2, 1)) @ A
    return dA.reshape(act.shape)


class l2(Objective):
    """sum over one image's pixels of (p - centre)^2 (Simonyan et al.'s class models keep
    colours moderate by subtracting it): d/dp = 2 (p - centre). Reads the image (``INPUT``)."""

    def __init__(self, center=0.5):
        self.layers, self.center = (INPUT,), center

    def forward(self, acts):
        d = acts[INPUT] - self.center
        return (d * d).sum(axis=(1, 2, 3)), d

    def backward(self, dscore, d):
        return {INPUT: (2 * _per_image(dscore, d)) * d}


class tv(Objective):
    """Total variation: the sum of squared differences between neighbouring pixels, which is
    large for high-frequency noise (subtract it). d/dp of (p[i+1] - p[i])^2 is -2(...) at p[i]
    and +2(...) at p[i+1]. Reads the image (``INPUT``)."""

    def __init__(self):
        self.layers = (INPUT,)

    def forward(self, acts):
        p = acts[INPUT]
        dy = p[:, :, 1:, :] - p[:, :, :-1, :]
        dx = p[:, :, :, 1:] - p[:, :, :, :-1]
        return (dy * dy).sum(axis=(1, 2, 3)) + (dx * dx).sum(axis=(1, 2, 3)), (p.shape, dy, dx)

    def backward(self, dscore, cache):
        shape, dy, dx = cache
        xp = get_xp(dy)
        grad = xp.zeros(shape, dtype=dy.dtype)
        grad[:, :, 1:, :] += 2 * dy
        grad[:, :, :-1, :] -= 2 * dy
        grad[:, :, :, 1:] += 2 * dx
        grad[:, :, :, :-1] -= 2 * dx
        return {INPUT: _per_image(dscore, grad) * grad}


__all__ = ["INPUT", "Objective", "Sum", "channel", "deepdream", "diversity", "l2", "neuron", "tv"]
