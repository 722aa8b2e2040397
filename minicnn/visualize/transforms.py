"""Transformation robustness for feature visualization: random transforms and their adjoints.

Every step of the optimization looks at a randomly jittered, scaled and rotated copy of the
image (Lucid's "standard transforms"); an image that excites a unit only at one exact alignment
of pixels is not a feature, just adversarial noise. A transform is linear in the image, so the
backward pass is its adjoint A^T: for all x, y, <A x, y> = <x, A^T y> (tests/test_visualize.py
checks exactly that identity for each one). The convention is minicnn's, with the random
choice drawn in ``forward`` and kept in the cache:

    y, cache = Jitter(8).forward(x, rng)   # (N, C, H, W) -> (N, C, H', W')
    dx = Jitter(8).backward(dy, cache)     # (N, C, H', W') -> (N, C, H, W)

The regularizers (L2, total variation) are objectives on the image: see objectives.py.
"""
import math

import numpy as np

from ..backend import get_xp


class Pad:
    """Surround the image with ``width`` pixels of constant ``value`` (Lucid: 12, grey)."""

    def __init__(self, width, value=0.5):
        self.width, self.value = width, value

    def forward(self, x, rng=None):
        xp, p = get_xp(x), self.width
        N, C, H, W = x.shape
        out = xp.full((N, C, H + 2 * p, W + 2 * p), self.value, dtype=x.dtype)
        out[:, :, p:p + H, p:p + W] = x
        return out, None

    def backward(self, g, cache):          # the border is constant: only the centre flows back
        p = self.width
        return g[:, :, p:g.shape[2] - p, p:g.shape[3] - p]


class Jitter:
    """A random crop that drops ``d`` rows and columns (Lucid's jitter(d)): shifts of 0..d px."""

    def __init__(self, d):
        self.d = d

    def forward(self, x, rng):
        oy, ox = (int(v) for v in rng.integers(0, self.d + 1, size=2))
        d = self.d
        return x[:, :, oy:x.shape[2] - d + oy, ox:x.shape[3] - d + ox], (oy, ox)

    def backward(self, g, cache):
        oy, ox = cache
        xp = get_xp(g)
        N, C, h, w = g.shape
        out = xp.zeros((N, C, h + self.d, w + self.d), dtype=g.dtype)
        out[:, :, oy:oy + h, ox:ox + w] = g
        return out


class Roll:
    """A random circular shift by up to ``d`` px (keeps the size: for class visualization)."""

    def __init__(self, d):
        self.d = d

    def forward(self, x, rng):
        oy, ox = (int(v) for v in rng.integers(-self.d, self.d + 1, size=2))
        return get_xp(x).roll(x, (oy, ox), axis=(2, 3)), (oy, ox)

    def backward(self, g, cache):
        oy, ox = cache
        return get_xp(g).roll(g, (-oy, -ox), axis=(2, 3))


class _Warp:
    """A bilinear resampling: out[..., o] = sum of 4 bilinear weights * x[..., source pixel]
    (0 outside the image). As a matrix, out = x @ S^T with S sparse (4 entries a row); the
    adjoint is g @ S: each output's gradient is sent back to its 4 source pixels with the same
    weights, added up (``bincount`` does the adding). Subclasses say where each output pixel
    reads from (``coords``) and the output size, for a random choice made by ``choose``."""

    def __init__(self):
        self._tables = {}     # (H, W, choice, array module) -> bilinear table, see ``table``

    def forward(self, x, rng):
        xp = get_xp(x)
        N, C, H, W = x.shape
        choice = self.choose(rng)
        idx, wts = self.table(H, W, choice, xp)
        wts = wts.astype(x.dtype, copy=False)
        flat = x.reshape(N, C, H * W)
        out = sum(flat[:, :, idx[k]] * wts[k] for k in range(4))
        return out.reshape(N, C, *self.out_size(H, W, choice)), (x.shape, idx, wts)

    def table(self, H, W, choice, xp):
        """The bilinear table of one random choice, built on the host the first time it is drawn
        and kept on the device after that: a render draws from a few dozen choices (11 scales,
        21 angles), so its later steps build and copy nothing."""
        key = (H, W, choice, xp.__name__)
        if key not in self._tables:
            self._tables[key] = _bilinear_table(*self.coords(H, W, choice), H, W, xp)
        return self._tables[key]

    def backward(self, g, cache):
        (N, C, H, W), idx, wts = cache
        xp = get_xp(g)
        rows = N * C
        flat = g.reshape(rows, -1)                                  # (rows, outputs)
        target = (xp.arange(rows)[:, None, None] * (H * W) + idx[None]).ravel()   # (rows, 4, outputs)
        values = (flat[:, None, :] * wts[None].astype(g.dtype, copy=False)).ravel()
        dx = xp.bincount(target, weights=values, minlength=rows * H * W)
        return dx.astype(g.dtype).reshape(N, C, H, W)


class RandomScale(_Warp):
    """Resize by a random factor from ``scales`` (bilinear)."""

    def __init__(self, scales):
        super().__init__()
        self.scales = list(scales)

    def choose(self, rng):
        return float(self.scales[rng.integers(len(self.scales))])

    def coords(self, H, W, s):
        return _scale_coords(H, W, s)

    def out_size(self, H, W, s):
        return round(H * s), round(W * s)


class RandomRotate(_Warp):
    """Rotate about the centre by a random angle (degrees) from ``angles`` (bilinear; what
    comes from outside the image is 0)."""

    def __init__(self, angles):
        super().__init__()
        self.angles = list(angles)

    def choose(self, rng):
        return math.radians(float(self.angles[rng.integers(len(self.angles))]))

    def coords(self, H, W, a):
        return _rotate_coords(H, W, a)

    def out_size(self, H, W, a):
        return H, W


def standard_transforms(size):
    """Lucid's standard set, scaled from its 224-px design to ``size``: pad 12, jitter 8,
    scale 0.9..1.1, rotate -10..10 degrees, jitter 4."""
    k = size / 224

    def px(v):
        return max(1, round(v * k))
    return [Pad(px(12)), Jitter(px(8)), RandomScale([1 + (i - 5) / 50 for i in range(11)]),
            RandomRotate(range(-10, 11)), Jitter(px(4))]


def _scale_coords(H, W, s):
    """Source (y, x) of each output pixel of a resize by s (pixel centres, like PIL/PyTorch)."""
    h, w = round(H * s), round(W * s)
    y = (np.arange(h) + 0.5) * (H / h) - 0.5
    x = (np.arange(w) + 0.5) * (W / w) - 0.5
    return np.repeat(y, w), np.tile(x, h)


def _rotate_coords(H, W, a):
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    cy, cx = (H - 1) / 2, (W - 1) / 2
    y = cy + (i - cy) * math.cos(a) - (j - cx) * math.sin(a)   # the inverse rotation
    x = cx + (i - cy) * math.sin(a) + (j - cx) * math.cos(a)
    return y.ravel(), x.ravel()


def _bilinear_table(y, x, H, W, xp):
    """For source positions (y, x) of each output pixel: the flat indices of its 4 neighbours
    and their bilinear weights, (4, outputs) each; neighbours outside the image weigh 0."""
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    idx, wts = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            wt = (1 - np.abs(y - yy)) * (1 - np.abs(x - xx))
            ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            idx.append(np.where(ok, yy * W + xx, 0))
            wts.append(np.where(ok, wt, 0.0))
    return xp.asarray(np.stack(idx)), xp.asarray(np.stack(wts).astype(np.float32))


# ------------------------------------------------------------------------------------------------
# Not a transform with a gradient: a projection applied to plain pixels between steps


def blur(pixels):
    """A 3x3 binomial blur ([1, 2, 1] / 4 in each direction, edges repeated), in place-free.
    Applied to plain pixels every few steps, it removes the highest frequencies (Yosinski et
    al. 2015, "Understanding Neural Networks Through Deep Visualization")."""
    xp = get_xp(pixels)
    p = xp.pad(pixels, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    rows = (p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]) / 4
    return (rows[:, :, :, :-2] + 2 * rows[:, :, :, 1:-1] + rows[:, :, :, 2:]) / 4
