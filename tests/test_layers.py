"""The reference layers (minicnn.layers): every backward pass against numerical gradients, the
naive convolution against im2col, and caches that cannot be mixed up. The fast engines are
checked against these in test_fast.py.

Bound: in float64 with centered differences (h = 1e-5) a correct backward pass agrees with the
numerical gradient to about 1e-9 relative (truncation O(h^2) plus round-off O(1e-16 / h));
GRAD_TOL = 1e-7 leaves room for that and still fails on any real mistake, which is O(1).
Inputs are kept away from kinks: no ReLU input near 0, no two max-pool candidates within 2h.
"""
import numpy as np
import pytest

from minicnn import layers as L
from minicnn.gradcheck import numerical_gradient, rel_error

GRAD_TOL = 1e-7

# (N, C, H, W, F, K, stride, pad): pad 0/1/2, stride 1/2/3, odd and non-square sizes,
# batch 1 and > 1, several channels, kernels 1, 2, 3, 5.
CONV_CASES = [
    (2, 3, 7, 9, 4, 3, 1, 1),
    (2, 3, 8, 7, 5, 3, 2, 1),
    (1, 4, 9, 9, 3, 2, 2, 0),
    (3, 2, 6, 5, 4, 1, 1, 0),
    (2, 3, 7, 7, 2, 3, 1, 0),
    (1, 2, 11, 10, 3, 5, 3, 2),
    (2, 5, 5, 6, 3, 3, 2, 0),
    (2, 2, 6, 7, 5, 3, 1, 1),   # stride 1 with F > 2C: dx by col2im
]


def conv_data(rng, case, dtype=np.float64):
    N, C, H, W, F, K, stride, pad = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, stride, pad


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_im2col_matches_naive(case, rng):
    x, w, b, stride, pad = conv_data(rng, case)
    out_naive, cache_naive = L.conv2d_forward_naive(x, w, b, stride, pad)
    out_fast, cache_fast = L.conv2d_forward(x, w, b, stride, pad)
    N, C, H, W, F, K, _, _ = case
    assert out_fast.shape == (N, F, (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1)
    assert rel_error(out_fast, out_naive) < 1e-12
    dout = rng.standard_normal(out_naive.shape)
    for fast, naive in zip(L.conv2d_backward(dout, cache_fast), L.conv2d_backward_naive(dout, cache_naive)):
        assert rel_error(fast, naive) < 1e-12
    # the two caches are one type holding the same things: either backward takes either
    assert type(cache_fast) is type(cache_naive) is L.ConvCache
    for fast, naive in zip(L.conv2d_backward(dout, cache_naive), L.conv2d_backward_naive(dout, cache_fast)):
        assert rel_error(fast, naive) < 1e-12


def test_a_cache_of_another_layer_is_refused(rng):
    """A pool cache given to a conv backward (or the reverse) is an error, not a wrong gradient."""
    x, w, b, stride, pad = conv_data(rng, CONV_CASES[0])
    out, conv_cache = L.conv2d_forward(x, w, b, stride, pad)
    pooled, pool_cache = L.maxpool2d_forward(out, 2, 2)
    with pytest.raises(TypeError, match="ConvCache"):
        L.conv2d_backward(np.ones_like(out), pool_cache)
    with pytest.raises(TypeError, match="PoolCache"):
        L.maxpool2d_backward(np.ones_like(pooled), conv_cache)
    with pytest.raises(TypeError, match="ConvCache"):
        L.conv2d_backward(np.ones_like(out), tuple(conv_cache))    # a bare tuple: whose?


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_conv_gradients(case, impl, rng):
    x, w, b, stride, pad = conv_data(rng, case)
    forward = L.conv2d_forward if impl == "fast" else L.conv2d_forward_naive
    backward = L.conv2d_backward if impl == "fast" else L.conv2d_backward_naive
    out, cache = forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: forward(v, w, b, stride, pad)[0], x, dout)) < GRAD_TOL
    assert rel_error(dw, numerical_gradient(lambda v: forward(x, v, b, stride, pad)[0], w, dout)) < GRAD_TOL
    assert rel_error(db, numerical_gradient(lambda v: forward(x, w, v, stride, pad)[0], b, dout)) < GRAD_TOL


def test_conv_is_cross_correlation():
    """A one-hot kernel picks one shifted input pixel: no flip (PyTorch/Caffe convention)."""
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 2] = 1.0  # top-right tap
    out, _ = L.conv2d_forward(x, w, np.zeros(1), 1, 0)
    assert np.array_equal(out[0, 0], x[0, 0, 0:3, 2:5])


def test_conv_float32_stays_float32(rng):
    x, w, b, stride, pad = conv_data(rng, CONV_CASES[0], np.float32)
    out, cache = L.conv2d_forward(x, w, b, stride, pad)
    dx, dw, db = L.conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32


def test_conv_bad_shapes_are_clear_errors():
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        L.conv2d_forward(x, np.zeros((2, 4, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="does not fit"):
        L.conv2d_forward(x, np.zeros((2, 3, 7, 7)), np.zeros(2))


def away_from_zero(rng, shape):
    """Random values with |v| >= 0.1: no ReLU kink within reach of the finite difference."""
    v = rng.standard_normal(shape)
    return np.sign(v) * (0.1 + np.abs(v))


def test_relu_gradient(rng):
    x = away_from_zero(rng, (2, 3, 4, 5))
    out, cache = L.relu_forward(x)
    dout = rng.standard_normal(x.shape)
    dx = L.relu_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: L.relu_forward(v)[0], x, dout)) < GRAD_TOL


def test_relu_passes_the_gradient_where_the_input_was_positive():
    x = np.array([[-1.0, 2.0, 3.0, -4.0]])
    dout = np.array([[5.0, -6.0, 7.0, 8.0]])
    _, cache = L.relu_forward(x)
    assert np.array_equal(L.relu_backward(dout, cache), [[0, -6, 7, 0]])


def distinct_values(rng, shape):
    """A random permutation of well-separated values: no max-pool ties, no near-ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) * 0.01 - n * 0.005).reshape(shape)


@pytest.mark.parametrize("shape,kernel,stride", [
    ((2, 3, 8, 8), 2, 2),     # VGG's pool
    ((1, 2, 7, 9), 2, 2),     # odd sizes: the last row/column is dropped
    ((2, 2, 7, 7), 3, 2),     # overlapping windows
    ((1, 3, 6, 5), 3, 1),     # heavily overlapping
    ((1, 2, 9, 9), 2, 3),     # gaps between windows
])
def test_maxpool_gradient(shape, kernel, stride, rng):
    x = distinct_values(rng, shape)
    out, cache = L.maxpool2d_forward(x, kernel, stride)
    H_out, W_out = 1 + (shape[2] - kernel) // stride, 1 + (shape[3] - kernel) // stride
    assert out.shape == shape[:2] + (H_out, W_out)
    for i in range(H_out):       # the forward pass against the definition
        for j in range(W_out):
            win = x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            assert np.array_equal(out[:, :, i, j], win.max(axis=(2, 3)))
    dout = rng.standard_normal(out.shape)
    dx = L.maxpool2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: L.maxpool2d_forward(v, kernel, stride)[0], x, dout)) < GRAD_TOL


def test_maxpool_ties_go_to_the_first_position():
    """All-equal windows: exactly one input per window (the top-left) gets the gradient."""
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 2, 3] = x[0, 0, 3, 2] = 2.0  # a tie inside the bottom-right window, not at its start
    out, cache = L.maxpool2d_forward(x, 2, 2)
    dx = L.maxpool2d_backward(np.full(out.shape, 7.0), cache)
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = 7.0
    expected[2, 3] = 7.0  # first of the two 2.0s in row-major order
    assert np.array_equal(dx[0, 0], expected)


def test_linear_and_flatten_gradients(rng):
    x = rng.standard_normal((3, 2, 3, 2))
    w = rng.standard_normal((5, 12))
    b = rng.standard_normal(5)

    def f(x_, w_, b_):
        flat, _ = L.flatten_forward(x_)
        return L.linear_forward(flat, w_, b_)[0]

    flat, fcache = L.flatten_forward(x)
    out, cache = L.linear_forward(flat, w, b)
    assert rel_error(out, x.reshape(3, -1) @ w.T + b) < 1e-15
    dout = rng.standard_normal(out.shape)
    dflat, dw, db = L.linear_backward(dout, cache)
    dx = L.flatten_backward(dflat, fcache)
    assert rel_error(dx, numerical_gradient(lambda v: f(v, w, b), x, dout)) < GRAD_TOL
    assert rel_error(dw, numerical_gradient(lambda v: f(x, v, b), w, dout)) < GRAD_TOL
    assert rel_error(db, numerical_gradient(lambda v: f(x, w, v), b, dout)) < GRAD_TOL
    assert L.linear_backward(dout, cache, param_grads=False)[1] is None


def test_softmax_cross_entropy(rng):
    logits = rng.standard_normal((4, 6)) * 3
    y = np.array([0, 5, 2, 2])
    loss, dlogits = L.softmax_cross_entropy(logits, y)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert abs(loss - (-np.log(p[np.arange(4), y]).mean())) < 1e-12
    num = numerical_gradient(lambda v: np.array(L.softmax_cross_entropy(v, y)[0]), logits, np.array(1.0))
    assert rel_error(dlogits, num) < GRAD_TOL
    # huge logits must not overflow
    loss, _ = L.softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([0]))
    assert np.isfinite(loss) and loss < 1e-12
