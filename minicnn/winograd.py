"""Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016, "Fast Algorithms for
Convolutional Neural Networks"): a 3x3 stride-1 convolution with 2.25 times fewer
multiplications than im2col.

One output tile of 2x2 pixels reads a 4x4 input tile d. Directly it costs 2*2*9 = 36
multiplications per channel pair; Winograd's identity

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise, on 4x4 arrays)

costs 16. G g G^T (the filter, "U") is computed once per call; B^T d B ("V") and the output
transform with A are only additions and subtractions. Summed over input channels, the 16
elementwise products become 16 matrix products, one per position (k, l) of the 4x4 tile:

    M[k, l] = U[k, l] (F x C)  @  V[k, l] (C x tiles)

which is where the time goes, as in im2col, but on 16*F*C*tiles instead of 9*F*C*4*tiles
multiply-adds.

Does it pay? Only with many channels. The products take 2.25 times less time, but the tiles
cost memory traffic (a copy four times the input, two thin matrix products for the transforms),
and U is recomputed at every call (a cache would go stale when weights change in place). On
this project's 2-core CPU, one VGG19 layer (tutorial, "Speed"): 512 channels at 28x28 took
14 ms against im2col's 22, 256 at 56x56 18 against 22, 128 at 112x112 the same, 64 at 224x224
42 against 36. Hence the rule in ``worth_it``; ``layers.CONV_ALGORITHM`` overrides it.
Rounding: the transforms hold 1/2 and small sums only, so float32 results differ from im2col's
by a few units in the last place times sqrt(C) (tests/test_layers.py compares the two).
"""
import numpy as np

from .backend import get_xp

# The transforms of F(2x2, 3x3) (Lavin & Gray 2016, section 4.1)
B_T = np.array(((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)))  # input:  V = B^T d B
G = np.array(((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)))       # filter: U = G g G^T
A_T = np.array(((1, 1, 1, 0), (0, 1, -1, -1)))                                # output: Y = A^T M A
# On a tile flattened row by row, X^T t X is one matrix product: kron(X^T, X^T) @ t.flat
BB, GG, AA = np.kron(B_T, B_T), np.kron(G, G), np.kron(A_T, A_T)             # (16, 16), (16, 9), (4, 16)

# The kernel flipped in space (the backward pass's convolution, layers.conv2d_backward_data_as_conv):
# G J = P G, where J reverses the 3 taps and P swaps rows 0 and 3 of G, so the flipped kernel's
# U is P U P^T: the same 16 numbers, tile position (i, j) moved to (p(i), p(j)), p = (3, 1, 2, 0).
FLIP = np.array([4 * p + q for p in (3, 1, 2, 0) for q in (3, 1, 2, 0)])

MIN_CHANNELS = 256    # the rule (measured, tutorial "Speed"): below this im2col is as fast or faster
BLOCK = 1 << 21       # values of V per block (8 MB of float32): V and M stay near the caches


def worth_it(w_shape, stride):
    """The rule: a 3x3 kernel, stride 1, at least MIN_CHANNELS input and output channels."""
    F, C, KH, KW = w_shape
    return KH == KW == 3 and stride == 1 and min(F, C) >= MIN_CHANNELS


def filter_transform(w):
    """U = G g G^T for every (f, c), as one product: (F, C, 3, 3) -> (16, F, C)."""
    F, C = w.shape[:2]
    gg = get_xp(w).asarray(GG, dtype=w.dtype)
    return (gg @ w.reshape(F * C, 9).T).reshape(16, F, C)


def conv3x3(x, w, b, pad):
    """out = conv2d(x, w, b, stride=1, pad) for a 3x3 ``w``, by F(2x2, 3x3); (N, F, H_out, W_out)."""
    xp = get_xp(x)
    return _tiles(x, filter_transform(w), b, pad, xp.asarray(BB, dtype=x.dtype), xp.asarray(AA, dtype=x.dtype))


def conv3x3_backward_data(dout, w, pad):
    """dx of ``conv3x3(x, w, b, pad)``: a convolution of dout with w flipped in space and
    transposed (C <-> F), padded 2 - pad (as in ``layers.conv2d_backward_data_as_conv``), whose
    U is, by FLIP, U[FLIP[k]]^T at tile position k. Neither the flipped kernel nor that U is
    built: the products read U[k] transposed (a view, which BLAS reads as it is), and the
    position permutation moves onto the constants instead, V's rows (BB[FLIP]) and M's
    columns in the output transform (AA[:, FLIP]):

        sum_k AA[:, FLIP[k]] U[k]^T V[FLIP[k]]  =  sum_j AA[:, j] U[FLIP[j]]^T V[j]   (j = FLIP[k])
    """
    xp = get_xp(dout)
    u = filter_transform(w).transpose(0, 2, 1)                 # (16, C, F): a view
    bb, aa = xp.asarray(BB[FLIP], dtype=dout.dtype), xp.asarray(AA[:, FLIP], dtype=dout.dtype)
    return _tiles(dout, u, None, 2 - pad, bb, aa)


def _tiles(x, u, b, pad, bb, aa):
    """The convolution of x by the filter transform u (16, F, C), plus b (F,) unless None.

    The output is cut into 2x2 tiles (an odd size gets one extra row or column, cut off at the
    end), and processed a band of tile rows at a time so that the tiles' arrays stay small:

        d  (16, C, tiles)  the 4x4 input tiles, 2 px apart (one strided copy, like im2col)
        V = BB @ d         B^T d B for every tile
        M = U @ V          16 products (F, C) @ (C, tiles): the multiplications
        Y = AA @ M         A^T M A: the 2x2 outputs, scattered into place with the bias
    """
    xp = get_xp(x)
    N, C, H, W = x.shape
    F = u.shape[1]
    H_out, W_out = H + 2 * pad - 2, W + 2 * pad - 2
    rows, cols = (H_out + 1) // 2, (W_out + 1) // 2                # tiles
    x_pad = xp.zeros((N, C, 2 * rows + 2, 2 * cols + 2), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x          # zeros around, and below/right of an odd size
    out = xp.empty((N, F, 2 * rows, 2 * cols), dtype=x.dtype)
    band_rows = max(1, BLOCK // (16 * max(C, F) * cols))             # tile rows per block
    images = max(1, band_rows // rows)
    for n0 in range(0, N, images):
        n1 = min(N, n0 + images)
        for i0 in range(0, rows, band_rows):
            i1 = min(rows, i0 + band_rows)
            n, r = n1 - n0, i1 - i0
            band = x_pad[n0:n1, :, 2 * i0:2 * i1 + 2]
            sN, sC, sH, sW = band.strides
            tiles = xp.lib.stride_tricks.as_strided(                   # [i, j, c, n, ty, tx] =
                band, shape=(4, 4, C, n, r, cols),                     # band[n, c, 2ty + i, 2tx + j]
                strides=(sH, sW, sC, sN, 2 * sH, 2 * sW))
            d = tiles.reshape(16, C * n * r * cols)                    # the one copy
            v = (bb @ d).reshape(16, C, n * r * cols)
            m = xp.matmul(u, v)                                        # (16, F, tiles)
            y = (aa @ m.reshape(16, -1)).reshape(2, 2, F, n, r, cols)  # y[i, j, f, n, ty, tx]
            dest = out[n0:n1, :, 2 * i0:2 * i1].reshape(n, F, r, 2, cols, 2).transpose(3, 5, 1, 0, 2, 4)
            if b is None:                                              # out[n, f, 2ty + i, 2tx + j]
                dest[...] = y
            else:
                xp.add(y, b[:, None, None, None], out=dest)
    if (2 * rows, 2 * cols) != (H_out, W_out):
        out = xp.ascontiguousarray(out[:, :, :H_out, :W_out])
    return out
