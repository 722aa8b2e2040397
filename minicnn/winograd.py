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

Does it pay here? Not on this project's 2-core CPU, measured (tutorial, "Speed"): the products
take 2.25 times less time, but the transforms are some thirty NumPy passes over arrays four
times the size of the input, memory-bound and single-threaded, and G g G^T is recomputed at
every call (a cache would go stale when weights change in place). On VGG19 a saliency pass
took 0.74 s with it against 0.62 s with im2col. So it is not the default: set
``layers.CONV_ALGORITHM = "winograd"`` to use it for every 3x3 stride-1 convolution.
Rounding: the transforms hold 1/2 and small sums only, so float32 results differ from im2col's
by a few units in the last place times sqrt(C) (tests/test_layers.py compares the two).
"""
from .backend import get_xp

# The transforms of F(2x2, 3x3) (Lavin & Gray 2016, section 4.1)
B_T = ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1))      # input:  V = B^T d B
G = ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1))           # filter: U = G g G^T
A_T = ((1, 1, 1, 0), (0, 1, -1, -1))                                    # output: Y = A^T M A

BLOCK = 1 << 21       # values of V per block (8 MB of float32): V and M stay near the caches


def filter_transform(w):
    """U = G g G^T for every (f, c): (F, C, 3, 3) -> (16, F, C), position k*4 + l first."""
    xp = get_xp(w)
    g = xp.asarray(G, dtype=w.dtype)
    u = xp.tensordot(g, w, axes=([1], [2]))               # (4, F, C, 3): G g
    u = xp.tensordot(u, g, axes=([3], [1]))               # (4, F, C, 4): (G g) G^T
    F, C = w.shape[:2]
    return xp.ascontiguousarray(u.transpose(0, 3, 1, 2)).reshape(16, F, C)


def _input_transform(band, rows, cols, out):
    """V = B^T d B for every 4x4 tile of ``band`` (n, C, 2*rows + 2, 2*cols + 2), tiles 2 px
    apart: written into ``out`` (16, C, n, rows, cols). B^T's rows are d0 - d2, d1 + d2,
    d2 - d1, d1 - d3: applied to the tile's rows, then to its columns."""
    xp = get_xp(band)
    n, C = band.shape[:2]
    d = [[band[:, :, i:i + 2 * rows:2, j:j + 2 * cols:2] for j in range(4)] for i in range(4)]
    r = xp.empty((4, 4, n, C, rows, cols), dtype=band.dtype)      # B^T d, row by row
    for j in range(4):
        xp.subtract(d[0][j], d[2][j], out=r[0, j])
        xp.add(d[1][j], d[2][j], out=r[1, j])
        xp.subtract(d[2][j], d[1][j], out=r[2, j])
        xp.subtract(d[1][j], d[3][j], out=r[3, j])
    v = out.reshape(4, 4, C, n, rows, cols).transpose(0, 1, 3, 2, 4, 5)   # views (n, C, ...) of out
    for k in range(4):
        xp.subtract(r[k, 0], r[k, 2], out=v[k, 0])
        xp.add(r[k, 1], r[k, 2], out=v[k, 1])
        xp.subtract(r[k, 2], r[k, 1], out=v[k, 2])
        xp.subtract(r[k, 1], r[k, 3], out=v[k, 3])


def _output_transform(m, b, out):
    """Y = A^T M A (+ bias) for every tile: ``m`` (16, F, n, rows, cols) -> ``out`` (n, F,
    2*rows, 2*cols). A^T's rows are m0 + m1 + m2 and m1 - m2 - m3."""
    xp = get_xp(m)
    m = m.reshape(4, 4, *m.shape[1:])
    t = xp.empty((4, 2) + m.shape[2:], dtype=m.dtype)          # M A, for each row k of the tile
    for k in range(4):
        xp.add(m[k, 0], m[k, 1], out=t[k, 0])
        t[k, 0] += m[k, 2]
        xp.subtract(m[k, 1], m[k, 2], out=t[k, 1])
        t[k, 1] -= m[k, 3]
    bias = b[:, None, None, None]                                  # (F, 1, 1, 1) against (F, n, rows, cols)
    for j in range(2):
        top = out[:, :, 0::2, j::2].transpose(1, 0, 2, 3)          # (F, n, rows, cols) views of out
        bottom = out[:, :, 1::2, j::2].transpose(1, 0, 2, 3)
        xp.add(t[0, j], t[1, j], out=top)
        top += t[2, j]
        top += bias
        xp.subtract(t[1, j], t[2, j], out=bottom)
        bottom -= t[3, j]
        bottom += bias


def conv3x3(x, w, b, pad):
    """out = conv2d(x, w, b, stride=1, pad) for a 3x3 ``w``, by F(2x2, 3x3); (N, F, H_out, W_out).

    The output is cut into 2x2 tiles (an odd size gets one extra row or column, cut off at the
    end), and processed a band of tile rows at a time so that V and M stay small."""
    xp = get_xp(x)
    N, C, H, W = x.shape
    F = w.shape[0]
    H_out, W_out = H + 2 * pad - 2, W + 2 * pad - 2
    rows, cols = (H_out + 1) // 2, (W_out + 1) // 2                # tiles
    x_pad = xp.zeros((N, C, 2 * rows + 2, 2 * cols + 2), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x          # zeros around, and below/right of an odd size
    u = filter_transform(w)
    out = xp.empty((N, F, 2 * rows, 2 * cols), dtype=x.dtype)
    per_row = 16 * max(C, F) * cols                                 # values of V or M per tile row
    band_rows = max(1, BLOCK // per_row)
    images = max(1, band_rows // rows)
    for n0 in range(0, N, images):
        n1 = min(N, n0 + images)
        for i0 in range(0, rows, band_rows):
            i1 = min(rows, i0 + band_rows)
            band = x_pad[n0:n1, :, 2 * i0:2 * i1 + 2]
            v = xp.empty((16, C, n1 - n0, i1 - i0, cols), dtype=x.dtype)
            _input_transform(band, i1 - i0, cols, v)
            m = xp.matmul(u, v.reshape(16, C, -1))                  # (16, F, tiles): the products
            _output_transform(m.reshape(16, F, n1 - n0, i1 - i0, cols), b, out[n0:n1, :, 2 * i0:2 * i1])
    if (2 * rows, 2 * cols) != (H_out, W_out):
        out = xp.ascontiguousarray(out[:, :, :H_out, :W_out])
    return out
