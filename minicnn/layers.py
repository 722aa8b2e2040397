"""The layers of a CNN as pairs of pure functions: ``*_forward`` and ``*_backward``.

This is the reference: the layers as a textbook writes them, to be read top to bottom. Every
forward function returns ``(out, cache)``; the matching backward function takes the upstream
gradient ``dout`` (same shape as ``out``) and that cache, and returns the gradient with respect
to the layer's input (and its parameters, for conv and linear). Nothing is stored anywhere
else, nothing is read from anywhere else: a layer has no hidden state.

The network does not run these functions as they are: ``minicnn.fast`` holds the same layers
made fast (blocked im2col, Winograd, the CUDA kernels), each tested against the ones here.

Layout (as in PyTorch and Caffe): activations are NCHW ``(N, C, H, W)``, conv weights are
OIHW ``(F, C, KH, KW)``, linear weights are ``(out, in)``. Convolution is cross-correlation
(no kernel flip). Every function works on numpy and on cupy arrays (``xp = get_xp(x)``) and
in float32 or float64.

The derivations are in tutorial.md, chapter "Backprop by hand".
"""
from typing import NamedTuple

from .backend import get_xp


class ConvCache(NamedTuple):
    """What a convolution's backward pass needs: its input (not padded), weights and settings.
    Every convolution in minicnn, reference or fast, returns this one type."""
    x: object
    w: object
    stride: int
    pad: int


class PoolCache(NamedTuple):
    """What max-pool's backward pass needs: its input and output (the winners are where they
    are equal) and its settings."""
    x: object
    out: object
    kernel: int
    stride: int


def expect_cache(cache, kind, where):
    """Raise TypeError unless ``cache`` is a ``kind`` (ConvCache, PoolCache): a cache of another
    implementation would give a wrong gradient without an error."""
    if not isinstance(cache, kind):
        raise TypeError(f"{where} needs the {kind.__name__} of its forward pass, got {type(cache).__name__}")


# ----------------------------------------------------------------------------------------------
# Convolution


def conv_output_size(size, kernel, stride, pad):
    """Output length along one axis: ``1 + (size + 2*pad - kernel) // stride``."""
    return 1 + (size + 2 * pad - kernel) // stride


def pool_output_size(size, kernel, stride):
    """Max-pool's output length along one axis (no padding): ``1 + (size - kernel) // stride``."""
    return 1 + (size - kernel) // stride


def check_conv_args(x, w, b, stride, pad):
    """ValueError with a plain sentence unless x, w, b, stride and pad make a convolution."""
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


def unpad2d(x_pad, pad):
    """The inverse of ``pad2d``: the middle of x_pad, without its ``pad`` border."""
    if pad == 0:
        return x_pad
    return x_pad[:, :, pad:-pad, pad:-pad]


def conv2d_forward_naive(x, w, b, stride=1, pad=0):
    """Convolution, the way the definition reads: one dot product per output element.

    out[n, f, i, j] = b[f] + sum_{c, p, q} x_pad[n, c, i*stride + p, j*stride + q] * w[f, c, p, q]

    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,)
    returns out: (N, F, H_out, W_out) with H_out = 1 + (H + 2*pad - KH) // stride, and a cache.
    Slow (Python loops); it is the definition every faster version is tested against.
    """
    check_conv_args(x, w, b, stride, pad)
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
    return out, ConvCache(x, w, stride, pad)


def conv2d_backward_naive(dout, cache):
    """Backward pass of ``conv2d_forward_naive``: returns (dx, dw, db).

    Each output element was ``sum(window * w[f]) + b[f]``, so it sends ``dout * w[f]`` back to
    its window of the input, ``dout * window`` to ``w[f]``, and ``dout`` to ``b[f]``.
    """
    expect_cache(cache, ConvCache, "conv2d_backward_naive")
    x, w, stride, pad = cache
    xp = get_xp(dout)
    x_pad = pad2d(x, pad)
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
    return unpad2d(dx_pad, pad), dw, db


def windows(x_pad, KH, KW, stride, H_out, W_out):
    """Every receptive field of x_pad as a 6-D *view* (no copy), (N, C, KH, KW, H_out, W_out),
    whose element [n, c, p, q, i, j] is x_pad[n, c, i*stride + p, j*stride + q]: ``as_strided``
    only chooses strides, no data moves."""
    xp = get_xp(x_pad)
    N, C, _, _ = x_pad.shape
    sN, sC, sH, sW = x_pad.strides
    return xp.lib.stride_tricks.as_strided(
        x_pad, shape=(N, C, KH, KW, H_out, W_out),
        strides=(sN, sC, sH, sW, stride * sH, stride * sW))


def im2col(x_pad, KH, KW, stride, H_out, W_out):
    """Lay every receptive field of x_pad out as a column: (N, C*KH*KW, H_out*W_out).

    The reshape copies the ``windows`` view once into columns. Row index of a column =
    c*KH*KW + p*KW + q, which is the order of ``w.reshape(F, -1)``.
    """
    N, C = x_pad.shape[:2]
    return windows(x_pad, KH, KW, stride, H_out, W_out).reshape(N, C * KH * KW, H_out * W_out)


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


def conv2d_forward(x, w, b, stride=1, pad=0):
    """Convolution as one matrix product per image (im2col). Same result as the naive one.

    out[n] = w.reshape(F, C*KH*KW) @ cols[n] + b, where cols[n] holds the receptive fields of
    image n as columns (see ``im2col``).
    x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> out: (N, F, H_out, W_out), cache
    """
    check_conv_args(x, w, b, stride, pad)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out = conv_output_size(H, KH, stride, pad)
    W_out = conv_output_size(W, KW, stride, pad)
    cols = im2col(pad2d(x, pad), KH, KW, stride, H_out, W_out)     # (N, C*KH*KW, H_out*W_out)
    out = w.reshape(F, -1) @ cols + b[:, None]                      # (N, F, H_out*W_out)
    return out.reshape(N, F, H_out, W_out), ConvCache(x, w, stride, pad)


def conv2d_backward(dout, cache):
    """Backward pass of ``conv2d_forward``: returns (dx, dw, db).

    With out[n] = W @ cols[n] + b (W = w.reshape(F, -1)):
      dcols[n] = W^T @ dout[n], then dx = col2im(dcols)      (the gradient for the input)
      dW = sum_n dout[n] @ cols[n]^T,  db = sum of dout over n, i, j
    """
    expect_cache(cache, ConvCache, "conv2d_backward")
    x, w, stride, pad = cache
    N, F, H_out, W_out = dout.shape
    _, C, KH, KW = w.shape
    x_pad = pad2d(x, pad)
    dout2 = dout.reshape(N, F, H_out * W_out)
    dcols = w.reshape(F, -1).T @ dout2                              # (N, C*KH*KW, H_out*W_out)
    dx = unpad2d(col2im(dcols, x_pad.shape, KH, KW, stride, H_out, W_out), pad)
    cols = im2col(x_pad, KH, KW, stride, H_out, W_out)
    dw = (dout2 @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(w.shape)
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


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


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (``cache`` is the forward pass's output)."""
    out = cache
    return dout * (out > 0)


# ----------------------------------------------------------------------------------------------
# Max pooling


def pool_windows(x, kernel, stride, H_out, W_out):
    """The K*K strided views of x, one per window position (p, q), in row-major order.

    View (p, q) holds, for every output (i, j), the input x[..., i*stride + p, j*stride + q].
    """
    return [x[..., p:p + stride * H_out:stride, q:q + stride * W_out:stride]
            for p in range(kernel) for q in range(kernel)]


def maxpool2d_forward(x, kernel=2, stride=2):
    """Max over each KxK window, windows ``stride`` apart (no padding).

    x: (N, C, H, W) -> out: (N, C, H_out, W_out), H_out = 1 + (H - kernel) // stride.
    A running maximum over the K*K strided views of x (``pool_windows``).
    """
    xp = get_xp(x)
    N, C, H, W = x.shape
    if kernel < 1 or stride < 1 or H < kernel or W < kernel:
        raise ValueError(f"maxpool2d: kernel {kernel}, stride {stride} does not fit {H}x{W}")
    H_out, W_out = pool_output_size(H, kernel, stride), pool_output_size(W, kernel, stride)
    views = pool_windows(x, kernel, stride, H_out, W_out)
    out = views[0].copy()
    for view in views[1:]:
        out = xp.maximum(out, view)
    return out, PoolCache(x, out, kernel, stride)


def maxpool2d_backward(dout, cache):
    """The gradient goes only to the input that won each window: dx[winner] += dout.

    The winner is the first position, in row-major window order, whose value equals the max;
    so ties go to the earliest position (as in PyTorch's CPU kernel) and exactly one input per
    window gets the gradient. Overlapping windows (stride < kernel) accumulate.
    """
    expect_cache(cache, PoolCache, "maxpool2d_backward")
    x, out, kernel, stride = cache
    xp = get_xp(dout)
    H_out, W_out = dout.shape[2:]
    dx = xp.zeros(x.shape, dtype=dout.dtype)
    claimed = xp.zeros(out.shape, dtype=bool)              # this window's winner already found
    for view, dx_view in zip(pool_windows(x, kernel, stride, H_out, W_out),
                             pool_windows(dx, kernel, stride, H_out, W_out)):
        wins = (view == out) & ~claimed
        claimed |= wins
        dx_view += dout * wins
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
    """dx = dout @ w,  dw = dout^T @ x,  db = sum_n dout.  Returns (dx, dw, db).
    ``param_grads=False`` skips dw and db (returned as None)."""
    x, w = cache
    dx = dout @ w
    if not param_grads:
        return dx, None, None
    return dx, dout.T @ x, dout.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# Loss


def one_hot(labels, classes, dtype):
    """(N,) integer labels -> (N, classes) rows of zeros with a one at each label."""
    xp = get_xp(labels)
    rows = xp.zeros((len(labels), classes), dtype=dtype)
    rows[xp.arange(len(labels)), labels] = 1
    return rows


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
    loss = -log_p[xp.arange(N), y].mean()
    dlogits = xp.exp(log_p) - one_hot(y, logits.shape[1], logits.dtype)     # p - onehot(y)
    return loss, dlogits / N
