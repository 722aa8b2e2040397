"""Winograd's minimal filtering F(m x m, 3 x 3) (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks"): a 3x3 stride-1 convolution with fewer multiplications than
im2col, for output tiles of m x m pixels, m = 2 or 4.

One output tile of m x m pixels reads an (m+2) x (m+2) input tile d. Directly it costs
m*m*9 multiplications per channel pair; Winograd's identity

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, on (m+2) x (m+2) arrays)

costs (m+2)^2: 16 instead of 36 for m = 2 (2.25 times fewer), 36 instead of 144 for m = 4
(4 times fewer). G g G^T (the filter, "U") is computed once per call; B^T d B ("V") and the
output transform with A are small sums. Summed over input channels, the elementwise products
become (m+2)^2 matrix products, one per position k of the tile:

    M[k] = U[k] (F x C)  @  V[k] (C x tiles)

which is where the time goes, as in im2col, but on (m+2)^2*F*C*tiles multiply-adds instead
of 9*F*C*m*m*tiles.

Does it pay? The products shrink, but the tiles cost memory traffic: V holds (m+2)^2 / m^2
values per input value (4 for m = 2, 2.25 for m = 4), and the transforms are products of their
own. So a bigger tile is better on both counts, except where it does not fit: a 14x14 map
needs 4 tiles of 4 (16 px, 31% wasted) but 7 of 2. Measured on this project's 2-core CPU
(tutorial, "Fewer multiplications: Winograd"), the rule in ``tile_size``: m = 4 from 64
channels in and out when the output's sides are multiples of 4, m = 2 from 256 channels
otherwise, im2col below; ``CPU(algorithm=...)`` overrides it.

Rounding: float32 results differ from im2col's by a few units in the last place times sqrt(C)
for m = 2; m = 4's transforms hold larger numbers (up to 8 and 1/24) and its error is about
7 times larger, 2e-6 relative on a VGG19 layer against 3e-7 for im2col (tests/test_layers.py
compares both with float64).
"""
import functools

import numpy as np

from ..backend import device_of, get_xp
from . import ceil_div

# The transforms (Lavin & Gray 2016, sections 4.1 and 4.2), from the interpolation points
# 0, 1, -1 (m = 2) and 0, 1, -1, 2, -2 (m = 4), and "infinity" (the last row and column).
B_T2 = np.array(((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)))
G2 = np.array(((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)))
A_T2 = np.array(((1, 1, 1, 0), (0, 1, -1, -1)))
B_T4 = np.array(((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0),
                 (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0), (0, 4, 0, -5, 0, 1)))
G4 = np.array(((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6),
               (1 / 24, 1 / 12, 1 / 6), (1 / 24, -1 / 12, 1 / 6), (0, 0, 1)))
A_T4 = np.array(((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)))

# On a tile flattened row by row, X^T t X is one matrix product: kron(X^T, X^T) @ t.flat.
# TRANSFORMS[m] = (BB, GG, AA): ((m+2)^2, (m+2)^2), ((m+2)^2, 9), (m^2, (m+2)^2)
TRANSFORMS = {m: (np.kron(b_t, b_t), np.kron(g, g), np.kron(a_t, a_t))
              for m, (b_t, g, a_t) in {2: (B_T2, G2, A_T2), 4: (B_T4, G4, A_T4)}.items()}

MIN_CHANNELS = {4: 64, 2: 256}   # the rule (measured: python -m minicnn.bench --convs); fewer: im2col
MAX_WASTE = 1 / 4                # F(4x4)'s rounded-up tiles may cover 25% more than the output
# Values of V per block. CPU: 8 MB of float32, so that V and M stay near the caches. GPU: 256 MB,
# large enough that each of the block's ~10 array operations keeps the GPU busy for longer than
# Python takes to launch it, small enough to bound the memory (minicnn.fast.cuda decides when).
BLOCK = {"cpu": 1 << 21, "cuda": 1 << 26}
# A frozen layer keeps a filter transform only from calls on at most this many images. Measured
# on this project's 2-core CPU (F(4x4), warm memory, medians of 7): making the transform was
# 18-20% of a call on one image (256 channels at 56 px, 512 at 28), but within the noise at
# five (-4 to 7%), where a batch's arrays are better given the memory.
KEEP_IMAGES = 1


def tile_size(w_shape, stride, out_shape, max_waste=None):
    """The rule: 4 or 2 (the tile side m to use), or None for im2col. A 3x3 kernel, stride 1;
    m = 4 with at least 64 channels in and out where its 4x4 tiles cover at most ``max_waste``
    (default MAX_WASTE) more than the output (sides that are multiples of 4 waste nothing;
    14x14 wastes 31%); m = 2 with at least 256 channels in and out."""
    F, C, KH, KW = w_shape
    if not (KH == KW == 3 and stride == 1):
        return None
    H, W = out_shape
    covered = 16 * ceil_div(H, 4) * ceil_div(W, 4)                  # pixels of the tiles, rounded up
    waste = MAX_WASTE if max_waste is None else max_waste
    if min(F, C) >= MIN_CHANNELS[4] and covered <= (1 + waste) * H * W:
        return 4
    if min(F, C) >= MIN_CHANNELS[2]:
        return 2
    return None


def filter_transform(w, m, flipped=False):
    """U = G g G^T for every (f, c), as one product: (F, C, 3, 3) -> ((m+2)^2, F, C).

    ``flipped=True`` transforms every kernel turned by 180 degrees, g[::-1, ::-1], without
    building it: flattened row by row, that kernel is the 9 numbers in reverse order, so it
    is the same product with GG's 9 columns reversed."""
    F, C = w.shape[:2]
    gg = _transform(m, "GG flipped" if flipped else "GG", get_xp(w), w.dtype)
    return (gg @ w.reshape(F * C, 9).T).reshape(-1, F, C)


def kept_filter_transform(w, m, flipped=False, kept=None, images=1):
    """``filter_transform(w, m, flipped)``, kept in ``kept`` from its second use when w cannot change.

    ``kept`` is the dict a frozen layer owns (``Layer.kept``: ``Network.freeze`` makes it, and
    it dies with the layer or when its weights are replaced); None, or a w that is not a
    read-only NumPy array owning its memory, means the transform is made on every call.

    Keeping pays where passes repeat: VGG19's transforms write 4 (m = 4) or 1.8 (m = 2) times
    the size of its conv weights, a share of every pass that small batches feel most (tutorial,
    "Frozen weights"). But held, they are 473 MB beside VGG19's 548 MB of weights, which a job
    of one pass (one saliency map) never reads again. No pass knows whether another will
    follow, so the second use is the evidence: the first call makes the transform and lets it
    go (``kept[key]`` = None records the use), the second makes it again and keeps it, and
    every later call reads it. A job of one pass holds nothing; a job of many pays for one
    transform more per layer and direction. On a GPU CuPy arrays have no read-only flag, so
    they are transformed on every call.

    ``images``: the call's batch. A call on more than KEEP_IMAGES images (SmoothGrad's copies, a
    grid of renders) reads a kept transform but neither keeps one nor counts as a use: there
    making it is a small share of the work."""
    key = (m, flipped)
    if kept is not None and kept.get(key) is not None:
        return kept[key]
    if kept is None or images > KEEP_IMAGES or not (isinstance(w, np.ndarray) and w.base is None and not w.flags.writeable):
        return filter_transform(w, m, flipped)
    u = filter_transform(w, m, flipped)
    if key in kept:                                 # the second use: keep it from now on
        u.flags.writeable = False                   # shared by every later call: nobody writes it
        kept[key] = u
    else:
        kept[key] = None                            # the first use: made, not kept
    return u


@functools.lru_cache(maxsize=None)
def _transform(m, name, xp, dtype):
    """A transform matrix of TRANSFORMS[m] as an array of xp and dtype, made once: on a GPU,
    copying it there on every call would make the host wait for the GPU to finish."""
    bb, gg, aa = TRANSFORMS[m]
    matrix = {"BB": bb, "GG": gg, "GG flipped": np.ascontiguousarray(gg[:, ::-1]), "AA": aa}[name]
    return xp.asarray(matrix, dtype=dtype)


def conv3x3(x, w, b, pad, m=4, kept=None):
    """out = conv2d(x, w, b, stride=1, pad) for a 3x3 ``w``, by F(m x m, 3x3); (N, F, H_out, W_out).
    ``b=None``: no bias. ``kept``: see ``kept_filter_transform``."""
    return _tiles(x, kept_filter_transform(w, m, kept=kept, images=len(x)), b, pad, m)


def conv3x3_backward_data(dout, w, pad, m=4, kept=None):
    """dx of ``conv3x3(x, w, b, pad)``: a convolution of dout with w turned by 180 degrees and
    transposed (C <-> F), padded 2 - pad (as in ``CPU.backward_data_as_conv``). Neither
    is copied: the turn is in ``filter_transform(..., flipped=True)``, and the products read
    its U[k] transposed (a view, which BLAS reads as it is)."""
    u = kept_filter_transform(w, m, flipped=True, kept=kept, images=len(dout)).transpose(0, 2, 1)      # ((m+2)^2, C, F): a view
    return _tiles(dout, u, None, 2 - pad, m)


def _tiles(x, u, b, pad, m):
    """The convolution of x by the filter transform u ((m+2)^2, F, C), plus b (F,) unless None.

    The output is cut into m x m tiles (a size that is not a multiple of m gets extra rows or
    columns, cut off at the end), and processed a band of tile rows at a time so that the
    tiles' arrays stay small; with T = (m+2)^2 positions per input tile:

        d  (T, C, tiles)   the input tiles, m px apart (one strided copy, like im2col)
        V = BB @ d         B^T d B for every tile
        M = U @ V          T products (F, C) @ (C, tiles): the multiplications
        Y = AA @ M         A^T M A: the m x m outputs, scattered into place with the bias
    """
    xp = get_xp(x)
    bb, aa = _transform(m, "BB", xp, x.dtype), _transform(m, "AA", xp, x.dtype)
    t = m + 2                                                        # input tile side
    N, C, H, W = x.shape
    F = u.shape[1]
    H_out, W_out = H + 2 * pad - 2, W + 2 * pad - 2
    rows, cols = ceil_div(H_out, m), ceil_div(W_out, m)                   # tiles, rounded up
    x_pad = xp.zeros((N, C, m * rows + 2, m * cols + 2), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x          # zeros around, and below/right of a ragged size
    out = xp.empty((N, F, m * rows, m * cols), dtype=x.dtype)
    band_rows = max(1, BLOCK[device_of(x)] // (t * t * max(C, F) * cols))   # tile rows per block
    images = max(1, band_rows // rows)
    for n0 in range(0, N, images):
        n1 = min(N, n0 + images)
        for i0 in range(0, rows, band_rows):
            i1 = min(rows, i0 + band_rows)
            n, r = n1 - n0, i1 - i0
            band = x_pad[n0:n1, :, m * i0:m * i1 + 2]
            sN, sC, sH, sW = band.strides
            tiles = xp.lib.stride_tricks.as_strided(                   # [i, j, c, n, ty, tx] =
                band, shape=(t, t, C, n, r, cols),                     # band[n, c, m ty + i, m tx + j]
                strides=(sH, sW, sC, sN, m * sH, m * sW))
            d = tiles.reshape(t * t, C * n * r * cols)                 # the one copy
            v = (bb @ d).reshape(t * t, C, n * r * cols)
            mm = xp.matmul(u, v)                                       # (T, F, tiles)
            y = (aa @ mm.reshape(t * t, -1)).reshape(m, m, F, n, r, cols)   # y[i, j, f, n, ty, tx]
            dest = out[n0:n1, :, m * i0:m * i1].reshape(n, F, r, m, cols, m).transpose(3, 5, 1, 0, 2, 4)
            if b is None:                                              # out[n, f, m ty + i, m tx + j]
                dest[...] = y
            else:
                xp.add(y, b[:, None, None, None], out=dest)
    if (m * rows, m * cols) != (H_out, W_out):
        out = xp.ascontiguousarray(out[:, :, :H_out, :W_out])
    return out
