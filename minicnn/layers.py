"""The layers of a CNN as pairs of pure functions: ``*_forward`` and ``*_backward``.

Every forward function returns ``(out, cache)``; the matching backward function takes the
upstream gradient ``dout`` (same shape as ``out``) and that cache, and returns the gradient
with respect to the layer's input (and its parameters, for conv and linear). Nothing is stored
anywhere else: a layer has no hidden state.

Layout (as in PyTorch and Caffe): activations are NCHW ``(N, C, H, W)``, conv weights are
OIHW ``(F, C, KH, KW)``, linear weights are ``(out, in)``. Convolution is cross-correlation
(no kernel flip). Every function works on numpy and on cupy arrays (``xp = get_xp(x)``) and
in float32 or float64.

The derivations are in tutorial.md, chapter "Backprop by hand".
"""
import contextlib
import threading

from . import winograd
from .backend import device_of, get_xp

# How conv2d_forward multiplies: "auto" (Winograd's F(4x4, 3x3) or F(2x2, 3x3) where
# winograd.tile_size says it pays: 3x3, stride 1, >= 64 or >= 256 channels; im2col elsewhere),
# or "im2col" / "winograd2" / "winograd4" everywhere they apply (tests, benchmarks).
CONV_ALGORITHM = "auto"
_FORCED_TILE = {"im2col": None, "winograd2": 2, "winograd4": 4}   # CONV_ALGORITHM -> tile side


# ----------------------------------------------------------------------------------------------
# Convolution


def conv_output_size(size, kernel, stride, pad):
    """Output length along one axis: ``1 + (size + 2*pad - kernel) // stride``."""
    return 1 + (size + 2 * pad - kernel) // stride


def _check_conv_args(x, w, b, stride, pad):
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d needs x (N, C, H, W) and w (F, C, KH, KW), "
                         f"got x {x.shape} and w {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"conv2d: x has {x.shape[1]} channels but w expects {w.shape[1]}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: b must have shape ({w.shape[0]},), got {b.shape}")
    if stride < 1 or pad < 0:
        raise ValueError(f"conv2d: need stride >= 1 and pad >= 0, got {stride}, {pad}")
    if x.shape[2] + 2 * pad < w.shape[2] or x.shape[3] + 2 * pad < w.shape[3]:
        raise ValueError(f"conv2d: a {w.shape[2]}x{w.shape[3]} kernel does not fit in "
                         f"{x.shape[2]}x{x.shape[3]} with pad {pad}")


def pad2d(x, pad):
    """Zero-pad the two spatial axes of x (N, C, H, W) by ``pad`` on every side."""
    if pad == 0:
        return x
    xp = get_xp(x)
    N, C, H, W = x.shape
    x_pad = xp.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=x.dtype)
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    return x_pad


def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    """Convolution, the way the definition reads: one dot product per output element.

    out[n, f, i, j] = b[f] + sum_{c, p, q} x_pad[n, c, i*stride + p, j*stride + q] * w[f, c, p, q]

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,)
    returns out: (N, F, H_out, W_out) with H_out = 1 + (H + 2*pad - KH) // stride, and a cache.
    Slow (Python loops); it is the reference the fast version is tested against.
    """
    _check_conv_args(x, w, b, stride, pad)
    xp = get_xp(x)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out = conv_output_size(H, KH, stride, pad)
    W_out = conv_output_size(W, KW, stride, pad)
    x_pad = pad2d(x, pad)
    out = xp.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[n, :, i * stride:i * stride + KH, j * stride:j * stride + KW]
                    out[n, f, i, j] = (window * w[f]).sum() + b[f]
    cache = (x_pad, w, stride, pad)
    return out, cache


def conv2d_backward_naive(dout, cache):
    """Backward pass of ``conv2d_forward_naive``: returns (dx, dw, db).

    Each output element was ``sum(window * w[f]) + b[f]``, so it sends ``dout * w[f]`` back to
    its window of the input, ``dout * window`` to ``w[f]``, and ``dout`` to ``b[f]``.
    """
    x_pad, w, stride, pad = cache
    xp = get_xp(dout)
    N, F, H_out, W_out = dout.shape
    _, _, KH, KW = w.shape
    dx_pad = xp.zeros_like(x_pad)
    dw = xp.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    hs, ws = i * stride, j * stride
                    dx_pad[n, :, hs:hs + KH, ws:ws + KW] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, hs:hs + KH, ws:ws + KW]
    db = dout.sum(axis=(0, 2, 3))
    return _unpad(dx_pad, pad), dw, db


def im2col(x_pad, KH, KW, stride, H_out, W_out, images_last=False, ones_row=False):
    """Lay every receptive field of x_pad out as a column: (N, C*KH*KW, H_out*W_out).

    ``as_strided`` makes a 6-D *view* (no copy) whose element [n, c, p, q, i, j] is
    x_pad[n, c, i*stride + p, j*stride + q]; the reshape then copies it once into columns.
    Row index of a column = c*KH*KW + p*KW + q, which is the order of ``w.reshape(F, -1)``.
    ``images_last=True`` puts the images side by side instead: one wide matrix
    (C*KH*KW, N*H_out*W_out), for the weight gradient's single product over a block of images.
    ``ones_row=True`` appends a row of ones, (N, C*KH*KW + 1, H_out*W_out): the bias trick
    (``conv2d_forward``).
    """
    xp = get_xp(x_pad)
    N, C, _, _ = x_pad.shape
    sN, sC, sH, sW = x_pad.strides
    windows = xp.lib.stride_tricks.as_strided(
        x_pad, shape=(N, C, KH, KW, H_out, W_out),
        strides=(sN, sC, sH, sW, stride * sH, stride * sW))
    if images_last:   # [c, p, q, n, i, j]: still a view; the reshape copies
        return windows.transpose(1, 2, 3, 0, 4, 5).reshape(C * KH * KW, N * H_out * W_out)
    if not ones_row:
        return windows.reshape(N, C * KH * KW, H_out * W_out)  # the one copy
    cols = xp.empty((N, C * KH * KW + 1, H_out * W_out), dtype=x_pad.dtype)
    # the one copy, into all rows but the last (a view: the reshape only splits their axes)
    cols[:, :-1].reshape(windows.shape)[...] = windows
    cols[:, -1] = 1
    return cols


def col2im(dcols, x_pad_shape, KH, KW, stride, H_out, W_out):
    """Adjoint of im2col: add every column entry back to the input pixel it was copied from.

    dcols: (N, C*KH*KW, H_out*W_out) -> dx_pad: x_pad_shape. One vectorized add per kernel
    offset (p, q); overlapping windows accumulate, which is exactly the chain rule's sum.
    """
    xp = get_xp(dcols)
    N, C, Hp, Wp = x_pad_shape
    dx_pad = xp.zeros(x_pad_shape, dtype=dcols.dtype)
    dcols = dcols.reshape(N, C, KH, KW, H_out, W_out)
    for p in range(KH):
        for q in range(KW):
            dx_pad[:, :, p:p + stride * H_out:stride, q:q + stride * W_out:stride] += dcols[:, :, p, q]
    return dx_pad


def _unpad(x_pad, pad):
    if pad == 0:
        return x_pad
    return x_pad[:, :, pad:-pad, pad:-pad]


# How many values one block of columns may hold (4 MB of float32) when the product has the
# machine's cores to itself: small enough to stay in the CPU's caches between the copy that
# builds it and the product that reads it, and to be reused by malloc instead of freshly mapped
# (and zeroed) for every layer. Threads that share the cores, each with its own products (the
# workers of training.BatchGradients), share the caches too: ``cols_block`` gives each its part.
COLS_BLOCK = 1 << 20
_THREAD = threading.local()     # this thread's block size, where cols_block set one


@contextlib.contextmanager
def cols_block(values):
    """Blocks of columns of ``values`` values, in this thread only, within the ``with``."""
    before = getattr(_THREAD, "cols_block", None)
    _THREAD.cols_block = values
    try:
        yield
    finally:
        _THREAD.cols_block = before


def _blocks(N, H_out, per_row):
    """Split the output into blocks (n0, n1, i0, i1) = images n0:n1, output rows i0:i1, whose
    column matrix holds about COLS_BLOCK values (``per_row`` values per output row), or what
    ``cols_block`` set for this thread."""
    rows = max(1, (getattr(_THREAD, "cols_block", None) or COLS_BLOCK) // per_row)
    if rows >= H_out:  # whole images fit: several images per block
        images = rows // H_out
        for n0 in range(0, N, images):
            yield n0, min(N, n0 + images), 0, H_out
    else:              # a band of rows of one image per block
        for n in range(N):
            for i0 in range(0, H_out, rows):
                yield n, n + 1, i0, min(H_out, i0 + rows)


def conv2d_forward(x, w, b, stride=1, pad=0):
    """Convolution as matrix products (im2col). Same signature and result as the naive one.

    out[n] = w.reshape(F, C*KH*KW) @ cols[n] + b, where cols[n] holds the receptive fields of
    image n as columns (see ``im2col``). The columns repeat every input value KH*KW times, so
    for a big layer (conv1_2 of VGG19: 115 MB) they are built and multiplied block by block:
    a band of output rows needs only the input rows under it.
    The bias rides along in the product (the "bias trick"): w gets b as one more column and
    the columns a row of ones, so [w | b] @ [cols; 1] = w @ cols + b without a separate pass
    over the output (2-7% of a VGG19 layer here). ``b=None``: no bias.
    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) or None -> out: (N, F, H_out, W_out), cache
    """
    _check_conv_args(x, w, b, stride, pad)
    xp = get_xp(x)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out = conv_output_size(H, KH, stride, pad)
    W_out = conv_output_size(W, KW, stride, pad)
    m = _winograd_tile(w, stride, (H_out, W_out))
    if m:
        return winograd.conv3x3(x, w, b, pad, m), (x, w, stride, pad)
    x_pad = pad2d(x, pad)
    w2 = w.reshape(F, C * KH * KW)
    if b is not None:
        w2 = xp.concatenate([w2, b[:, None]], axis=1)             # [w | b]
    out = xp.empty((N, F, H_out, W_out), dtype=x.dtype)
    for n0, n1, i0, i1 in _blocks(N, H_out, C * KH * KW * W_out):
        band = x_pad[n0:n1, :, i0 * stride:(i1 - 1) * stride + KH]  # input rows under out rows i0:i1
        cols = im2col(band, KH, KW, stride, i1 - i0, W_out, ones_row=b is not None)  # (n, C*KH*KW [+1], rows*W_out)
        out_block = out[n0:n1, :, i0:i1].reshape(n1 - n0, F, (i1 - i0) * W_out)  # a view
        xp.matmul(w2, cols, out=out_block)
    cache = (x, w, stride, pad)  # x, not x_pad: the padded copy is freed now, and rebuilt
    return out, cache            # in backward only if dw is asked for


def _winograd_tile(w, stride, out_shape):
    """Winograd's tile side (4 or 2) for this convolution, or None for im2col."""
    if CONV_ALGORITHM == "auto":
        return winograd.tile_size(w.shape, stride, out_shape)
    if CONV_ALGORITHM not in _FORCED_TILE:
        raise ValueError(f"layers.CONV_ALGORITHM: unknown {CONV_ALGORITHM!r}")
    fits = w.shape[2] == w.shape[3] == 3 and stride == 1
    return _FORCED_TILE[CONV_ALGORITHM] if fits else None


def conv2d_backward_data_as_conv(dout, w, pad):
    """dx for a stride-1 convolution, computed as another convolution ("full" correlation).

    Input pixel x[c, h, v] was multiplied by w[f, c, p, q] to make out[f, h - p + pad, v - q + pad],
    so dx[c, h, v] = sum_{f, p, q} dout[f, h - p + pad, v - q + pad] * w[f, c, p, q]:
    a correlation of dout with the kernel flipped in space and transposed (F <-> C), padded by
    K - 1 - pad. It equals col2im(w^T @ dout) but reuses the fast forward path and never builds
    the (C*KH*KW, H*W) gradient-of-columns matrix. Its im2col copies F*K*K values per pixel
    where col2im reads and writes C*K*K scattered ones, so ``conv2d_backward`` uses it when
    F <= 2*C (square kernel, pad < K; measured: as fast or faster at every VGG19 and world-model
    shape with F = 2C, e.g. 64 -> 128 channels on 25 images of 112 px 0.41 -> 0.36-0.38 s) and
    col2im otherwise (e.g. conv1_1, whose C = 3).
    """
    xp = get_xp(dout)
    F, C, KH, KW = w.shape
    dx_shape = (dout.shape[2] + KH - 1 - 2 * pad, dout.shape[3] + KW - 1 - 2 * pad)
    m = _winograd_tile(w, 1, dx_shape)  # the same rule as forward (it is symmetric in F and C)
    if m:
        return winograd.conv3x3_backward_data(dout, w, pad, m)   # flips nothing: see there
    w_flip = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, KH, KW)
    dx, _ = conv2d_forward(dout, w_flip, None, stride=1, pad=KH - 1 - pad)
    return dx


def conv2d_backward(dout, cache, param_grads=True, input_grad=True):
    """Backward pass of ``conv2d_forward``: returns (dx, dw, db).

    With out = W @ cols + b (W = w.reshape(F, -1)):
      dcols = W^T @ dout, then dx = col2im(dcols)      (the gradient for the input)
      dW    = sum_n dout[n] @ cols[n]^T,  db = sum of dout over n, i, j
    ``param_grads=False`` skips dw and db (returned as None): saliency maps and feature
    visualization only need dx, and dw costs as much as dx does. ``input_grad=False`` skips dx
    (returned as None): training never needs the gradient of the images themselves.
    """
    x, w, stride, pad = cache
    xp = get_xp(dout)
    N, F, H_out, W_out = dout.shape
    _, C, KH, KW = w.shape
    dout2 = dout.reshape(N, F, H_out * W_out)
    if not input_grad:
        dx = None
    elif stride == 1 and KH == KW and pad < KH and F <= 2 * C:
        dx = conv2d_backward_data_as_conv(dout, w, pad)
    else:
        x_pad_shape = (N, C, x.shape[2] + 2 * pad, x.shape[3] + 2 * pad)
        dcols = w.reshape(F, -1).T @ dout2                # (N, C*KH*KW, H_out*W_out)
        dx = _unpad(col2im(dcols, x_pad_shape, KH, KW, stride, H_out, W_out), pad)
    if not param_grads:
        return dx, None, None
    # dW = sum_n dout[n] @ cols[n]^T, with the columns rebuilt block by block (as in forward).
    # The sum over a block's images is one product, images side by side in both factors: its
    # inner dimension is n*rows*W_out, where n separate products would each have rows*W_out,
    # too thin on an 8x8 map (64) for the BLAS to run at speed or to split over its threads.
    # It is computed transposed, dW^T = cols @ dout^T (C*KH*KW x F): BLAS works in tiles of
    # the output's rows, and C*KH*KW rows fill them where F = 16 rows is one tile (measured:
    # 1.2-1.9 times faster on the world model's shapes, most for the fewest filters; 3-19% on
    # VGG19's).
    x_pad = pad2d(x, pad)
    dw_t = xp.zeros((C * KH * KW, F), dtype=dout.dtype)
    for n0, n1, i0, i1 in _blocks(N, H_out, C * KH * KW * W_out):
        band = x_pad[n0:n1, :, i0 * stride:(i1 - 1) * stride + KH]
        cols = im2col(band, KH, KW, stride, i1 - i0, W_out, images_last=True)  # (C*KH*KW, n*rows*W_out)
        dout_block = dout[n0:n1, :, i0:i1].transpose(1, 0, 2, 3).reshape(F, -1)  # (F, n*rows*W_out)
        dw_t += cols @ dout_block.T
    db = dout.sum(axis=(0, 2, 3))
    return dx, xp.ascontiguousarray(dw_t.T).reshape(w.shape), db


# ----------------------------------------------------------------------------------------------
# ReLU


def relu_forward(x):
    """out = max(x, 0).

    The backward pass needs to know where x > 0, which is exactly where out > 0; so the cache
    is out, and x (often a big conv output) can be freed as soon as the next layer runs.
    """
    xp = get_xp(x)
    out = xp.maximum(x, 0)
    return out, out


def relu_backward(dout, cache, rule="plain"):
    """dx = dout where x > 0, else 0.

    ``rule="guided"`` is the guided-backprop rule (Springenberg et al. 2015, "Striving for
    Simplicity"): additionally zero the gradient where dout < 0, so only evidence *for* the
    target passes down. It is not the true gradient; saliency's ``guided`` method uses it.
    ``rule="redirect"`` is feature visualization's remedy for dead ReLUs (``_relu_redirect``).
    """
    out = cache
    if rule == "plain":
        return dout * (out > 0)
    if rule == "guided":
        return dout * ((out > 0) & (dout > 0))
    if rule == "redirect":
        return _relu_redirect(dout, out)
    raise ValueError(f"unknown relu backward rule {rule!r}")


def _relu_redirect(dout, out):
    """Lucid's "redirected" ReLU gradient, for feature visualization only.

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


# ----------------------------------------------------------------------------------------------
# Max pooling

# Input values per block of planes (512 KB of float32). Pooling reads each input plane K*K
# times, once per window position; done a few planes at a time, the later reads hit the CPU's
# cache instead of memory (measured on conv1's output, 64 x 224 x 224: backward 13.4 -> 7.0 ms).
POOL_BLOCK = 1 << 17


def _pool_windows(x, kernel, stride, H_out, W_out):
    """The K*K strided views of x, one per window position (p, q), in row-major order.

    View (p, q) holds, for every output (i, j), the input x[..., i*stride + p, j*stride + q].
    """
    return [x[..., p:p + stride * H_out:stride, q:q + stride * W_out:stride]
            for p in range(kernel) for q in range(kernel)]


def _plane_blocks(x):
    """Slices of the N*C planes of x (N, C, H, W), a block of POOL_BLOCK values each (one block
    on a GPU, where a kernel launch per block would cost more than the caches save)."""
    planes, size = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
    step = max(1, POOL_BLOCK // size) if device_of(x) == "cpu" else planes
    return [slice(p, p + step) for p in range(0, planes, step)]


def maxpool2d_forward(x, kernel=2, stride=2):
    """Max over each KxK window, windows ``stride`` apart (no padding).

    x: (N, C, H, W) -> out: (N, C, H_out, W_out), H_out = 1 + (H - kernel) // stride.
    A running maximum over the K*K strided views: K*K - 1 vectorized ``maximum`` calls, a block
    of planes at a time. The cache keeps x and out; backward finds each window's winner from them.
    """
    xp = get_xp(x)
    N, C, H, W = x.shape
    if kernel < 1 or stride < 1 or H < kernel or W < kernel:
        raise ValueError(f"maxpool2d: kernel {kernel}, stride {stride} does not fit {H}x{W}")
    H_out = 1 + (H - kernel) // stride
    W_out = 1 + (W - kernel) // stride
    out = xp.empty((N, C, H_out, W_out), dtype=x.dtype)
    x_planes, out_planes = x.reshape(N * C, H, W), out.reshape(N * C, H_out, W_out)
    for block in _plane_blocks(x):
        o = out_planes[block]
        views = _pool_windows(x_planes[block], kernel, stride, H_out, W_out)
        o[...] = views[0]
        for view in views[1:]:
            xp.maximum(o, view, out=o)
    return out, (x, out, kernel, stride)


def maxpool2d_backward(dout, cache):
    """The gradient goes only to the input that won each window: dx[winner] += dout.

    The winner is the first position, in row-major window order, whose value equals the max;
    so ties go to the earliest position (as in PyTorch's CPU kernel) and exactly one input per
    window gets the gradient: position k wins where it equals the max and no earlier position
    has claimed the window (``wins > claimed`` is "wins and not claimed" on booleans).
    Overlapping windows (stride < kernel) accumulate.
    """
    x, out, kernel, stride = cache
    xp = get_xp(dout)
    N, C, H_out, W_out = dout.shape
    H, W = x.shape[2:]
    overlap = stride < kernel
    tiled = stride == kernel and H == H_out * kernel and W == W_out * kernel  # every input in one window
    dx = xp.empty(x.shape, dtype=dout.dtype) if tiled else xp.zeros(x.shape, dtype=dout.dtype)
    planes = [a.reshape((N * C,) + a.shape[2:]) for a in (x, dx, out, dout)]
    for block in _plane_blocks(x):
        x_b, dx_b, out_b, dout_b = (a[block] for a in planes)
        claimed = None                                      # this window's winner already found
        for view, dx_view in zip(_pool_windows(x_b, kernel, stride, H_out, W_out),
                                 _pool_windows(dx_b, kernel, stride, H_out, W_out)):
            wins = view == out_b
            if claimed is None:
                claimed = wins
            else:
                xp.greater(wins, claimed, out=wins)
                claimed = claimed | wins
            if overlap:
                dx_view += dout_b * wins
            else:                                           # each input written at most once
                xp.multiply(dout_b, wins, out=dx_view)
    return dx


# ----------------------------------------------------------------------------------------------
# Flatten and linear


def flatten_forward(x):
    """(N, C, H, W) -> (N, C*H*W) in C, H, W order (PyTorch's order; Keras uses H, W, C)."""
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    return dout.reshape(cache)


def linear_forward(x, w, b):
    """out = x @ w^T + b.   x: (N, D_in), w: (D_out, D_in), b: (D_out,) -> (N, D_out)"""
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: x {x.shape} does not match w {w.shape} (expects (N, {w.shape[1]}))")
    return x @ w.T + b, (x, w)


def linear_backward(dout, cache, param_grads=True):
    """dx = dout @ w,  dw = dout^T @ x,  db = sum_n dout.  Returns (dx, dw, db)."""
    x, w = cache
    dx = dout @ w
    if not param_grads:
        return dx, None, None
    return dx, dout.T @ x, dout.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# Loss


def softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against integer labels y; returns (loss, dlogits).

    logits: (N, K), y: (N,) ints in [0, K). With p = softmax(logits):
    loss = -mean_n log p[n, y_n]   and   dlogits = (p - onehot(y)) / N.
    Subtracting the row max first keeps exp() from overflowing; it does not change p.
    """
    xp = get_xp(logits)
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(N)
    loss = -log_p[rows, y].mean()
    dlogits = xp.exp(log_p)
    dlogits[rows, y] -= 1
    return loss, dlogits / N
