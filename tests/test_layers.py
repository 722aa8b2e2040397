"""Every layer's backward pass against numerical gradients, and naive vs im2col convolution.

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
rng = np.random.default_rng(1234)

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


def conv_data(case, dtype=np.float64):
    N, C, H, W, F, K, stride, pad = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, K, K)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, stride, pad


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_fast_matches_naive(case):
    x, w, b, stride, pad = conv_data(case)
    out_naive, cache_naive = L.conv2d_forward_naive(x, w, b, stride, pad)
    out_fast, cache_fast = L.conv2d_forward(x, w, b, stride, pad)
    N, C, H, W, F, K, _, _ = case
    assert out_fast.shape == (N, F, (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1)
    assert rel_error(out_fast, out_naive) < 1e-12
    dout = rng.standard_normal(out_naive.shape)
    for fast, naive in zip(L.conv2d_backward(dout, cache_fast), L.conv2d_backward_naive(dout, cache_naive)):
        assert rel_error(fast, naive) < 1e-12


def test_conv_blocked_path_matches_unblocked(monkeypatch):
    """Force the row-band and image-group blocking of conv2d_forward on small inputs."""
    for case in CONV_CASES[:3]:
        x, w, b, stride, pad = conv_data(case)
        whole, _ = L.conv2d_forward(x, w, b, stride, pad)
        for block in (1, 40, 200):  # one row per block / a few rows / whole images
            monkeypatch.setattr(L, "COLS_BLOCK", block)
            banded, cache = L.conv2d_forward(x, w, b, stride, pad)
            assert rel_error(banded, whole) < 1e-12
            dout = rng.standard_normal(whole.shape)
            dx, dw, db = L.conv2d_backward(dout, cache)
            monkeypatch.undo()
            _, cache = L.conv2d_forward(x, w, b, stride, pad)
            dx2, dw2, db2 = L.conv2d_backward(dout, cache)
            assert rel_error(dx, dx2) < 1e-12 and rel_error(dw, dw2) < 1e-12


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_conv_gradients(case, impl):
    x, w, b, stride, pad = conv_data(case)
    forward = L.conv2d_forward if impl == "fast" else L.conv2d_forward_naive
    backward = L.conv2d_backward if impl == "fast" else L.conv2d_backward_naive
    out, cache = forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: forward(v, w, b, stride, pad)[0], x, dout)) < GRAD_TOL
    assert rel_error(dw, numerical_gradient(lambda v: forward(x, v, b, stride, pad)[0], w, dout)) < GRAD_TOL
    assert rel_error(db, numerical_gradient(lambda v: forward(x, w, v, stride, pad)[0], b, dout)) < GRAD_TOL


WINOGRAD_CASES = [(2, 3, 7, 9, 4, 3, 1, 1), (2, 3, 7, 7, 2, 3, 1, 0), (1, 5, 8, 8, 6, 3, 1, 1),
                  (3, 4, 5, 6, 3, 3, 1, 2), (1, 2, 3, 3, 2, 3, 1, 0)]   # odd, even, non-square, pad 0/1/2


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_equals_the_definition_and_its_gradients_check(case, m, monkeypatch):
    """F(m x m, 3x3) gives the naive convolution (ragged sizes: the extra tile rows are cut
    off), in blocks of one tile row too; with it switched on, dx (computed as a convolution, so
    by Winograd again) still passes the numerical gradient check."""
    from minicnn import winograd
    x, w, b, stride, pad = conv_data(case)
    expected, _ = L.conv2d_forward_naive(x, w, b, stride, pad)
    assert rel_error(winograd.conv3x3(x, w, b, pad, m), expected) < 1e-12
    monkeypatch.setattr(winograd, "BLOCK", {"cpu": 1})
    assert rel_error(winograd.conv3x3(x, w, b, pad, m), expected) < 1e-12
    monkeypatch.setattr(L, "CONV_ALGORITHM", f"winograd{m}")
    out, cache = L.conv2d_forward(x, w, b, stride, pad)
    assert rel_error(out, expected) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx, dw, db = L.conv2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: L.conv2d_forward(v, w, b, stride, pad)[0], x, dout)) < GRAD_TOL
    assert rel_error(dw, numerical_gradient(lambda v: L.conv2d_forward(x, v, b, stride, pad)[0], w, dout)) < GRAD_TOL
    naive_dx = L.conv2d_backward_naive(dout, L.conv2d_forward_naive(x, w, b, stride, pad)[1])[0]
    assert rel_error(winograd.conv3x3_backward_data(dout, w, pad, m), naive_dx) < 1e-12   # no flipped copy


@pytest.mark.parametrize("m,tol", [(2, 1e-6), (4, 1e-5)])
def test_winograd_float32_on_a_vgg_sized_layer(m, tol, monkeypatch):
    """float32, 64 channels: within float32 round-off of the float64 result (by im2col), which
    m = 4's bigger transform constants make about 7 times larger than m = 2's."""
    from minicnn import winograd
    monkeypatch.setattr(L, "CONV_ALGORITHM", "im2col")
    x = rng.standard_normal((2, 64, 30, 30)).astype(np.float32)
    w = (rng.standard_normal((32, 64, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    exact, cache64 = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    got = winograd.conv3x3(x, w, b, 1, m)
    assert got.dtype == np.float32 and rel_error(got, exact) < tol
    dout = rng.standard_normal(got.shape).astype(np.float32)
    exact_dx = L.conv2d_backward(dout.astype(np.float64), cache64, param_grads=False)[0]
    got_dx = winograd.conv3x3_backward_data(dout, w, 1, m)
    assert got_dx.dtype == np.float32 and rel_error(got_dx, exact_dx) < tol


def test_conv_backward_without_param_grads():
    for case in CONV_CASES:
        x, w, b, stride, pad = conv_data(case)
        out, cache = L.conv2d_forward(x, w, b, stride, pad)
        dout = rng.standard_normal(out.shape)
        dx_only, dw, db = L.conv2d_backward(dout, cache, param_grads=False)
        assert dw is None and db is None
        assert rel_error(dx_only, L.conv2d_backward(dout, cache)[0]) < 1e-14


def test_conv_backward_data_as_conv_equals_col2im():
    """The two ways conv2d_backward computes dx (a flipped-kernel convolution when F <= 2C,
    col2im otherwise) agree with each other, whichever is picked."""
    x, w, b, _, _ = conv_data((2, 6, 8, 7, 4, 3, 1, 1))
    out, cache = L.conv2d_forward(x, w, b, 1, 1)
    dout = rng.standard_normal(out.shape)
    via_conv = L.conv2d_backward_data_as_conv(dout, w, 1)
    dcols = w.reshape(4, -1).T @ dout.reshape(2, 4, -1)
    via_col2im = L.col2im(dcols, (2, 6, 10, 9), 3, 3, 1, 8, 7)[:, :, 1:-1, 1:-1]
    assert rel_error(via_conv, via_col2im) < 1e-12


def test_conv_is_cross_correlation():
    """A one-hot kernel picks one shifted input pixel: no flip (PyTorch/Caffe convention)."""
    x = np.arange(25, dtype=np.float64).reshape(1, 1, 5, 5)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 2] = 1.0  # top-right tap
    out, _ = L.conv2d_forward(x, w, np.zeros(1), 1, 0)
    assert np.array_equal(out[0, 0], x[0, 0, 0:3, 2:5])


def test_conv_float32_stays_float32():
    x, w, b, stride, pad = conv_data(CONV_CASES[0], np.float32)
    out, cache = L.conv2d_forward(x, w, b, stride, pad)
    dx, dw, db = L.conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32
    ref, _ = L.conv2d_forward_naive(*conv_data(CONV_CASES[0]))  # different data: just dtype
    assert ref.dtype == np.float64


def test_conv_bad_shapes_are_clear_errors():
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(ValueError, match="channels"):
        L.conv2d_forward(x, np.zeros((2, 4, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="does not fit"):
        L.conv2d_forward(x, np.zeros((2, 3, 7, 7)), np.zeros(2))


def away_from_zero(shape):
    """Random values with |v| >= 0.1: no ReLU kink within reach of the finite difference."""
    v = rng.standard_normal(shape)
    return np.sign(v) * (0.1 + np.abs(v))


def test_relu_gradient():
    x = away_from_zero((2, 3, 4, 5))
    out, cache = L.relu_forward(x)
    dout = rng.standard_normal(x.shape)
    dx = L.relu_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: L.relu_forward(v)[0], x, dout)) < GRAD_TOL


def test_relu_guided_rule():
    x = np.array([[-1.0, 2.0, 3.0, -4.0]])
    dout = np.array([[5.0, -6.0, 7.0, 8.0]])
    _, cache = L.relu_forward(x)
    assert np.array_equal(L.relu_backward(dout, cache), [[0, -6, 7, 0]])
    assert np.array_equal(L.relu_backward(dout, cache, rule="guided"), [[0, 0, 7, 0]])


def distinct_values(shape):
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
def test_maxpool_gradient(shape, kernel, stride):
    x = distinct_values(shape)
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


def test_linear_and_flatten_gradients():
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


def test_softmax_cross_entropy():
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


def test_winograd_rule_picks_wide_3x3_layers(monkeypatch):
    """"auto" (the measured rule) sends 3x3 stride-1 convolutions with >= 64 channels in and
    out to F(4x4, 3x3) where its 4x4 tiles cover at most 25% more than the output (sides that
    are multiples of 4, or 15x14: 16x16 tiles for 210 px), other ones with >= 256 channels to
    F(2x2, 3x3) (14x14: 31% more), and everything else to im2col; each gives the definition's
    result, and dx (a convolution too) goes the same way."""
    from minicnn import winograd
    used = []
    real_fwd, real_bwd = winograd.conv3x3, winograd.conv3x3_backward_data
    monkeypatch.setattr(winograd, "conv3x3", lambda *a: used.append(("fwd", a[4])) or real_fwd(*a))
    monkeypatch.setattr(winograd, "conv3x3_backward_data", lambda *a: used.append(("bwd", a[3])) or real_bwd(*a))
    for shape, size, stride, m in (((256, 256, 3, 3), (6, 5), 1, 2), ((256, 256, 3, 3), (8, 4), 1, 4),
                                   ((64, 64, 3, 3), (8, 12), 1, 4), ((64, 32, 3, 3), (8, 8), 1, None),
                                   ((128, 64, 3, 3), (8, 6), 1, None), ((256, 128, 3, 3), (6, 5), 1, None),
                                   ((256, 256, 3, 3), (8, 8), 2, None), ((256, 256, 1, 1), (8, 8), 1, None),
                                   ((128, 128, 3, 3), (15, 14), 1, 4), ((256, 256, 3, 3), (14, 14), 1, 2),
                                   ((64, 64, 3, 3), (13, 13), 1, None)):
        x = rng.standard_normal((1, shape[1]) + size)
        w = rng.standard_normal(shape) * 0.05
        b = rng.standard_normal(shape[0])
        used.clear()
        out, cache = L.conv2d_forward(x, w, b, stride, 1)
        dout = rng.standard_normal(out.shape)
        dx = L.conv2d_backward(dout, cache, param_grads=False)[0]
        assert used == ([("fwd", m), ("bwd", m)] if m else []), (shape, size)
        assert rel_error(out, L.conv2d_forward_naive(x, w, b, stride, 1)[0]) < 1e-12
        assert rel_error(dx, L.conv2d_backward_naive(dout, L.conv2d_forward_naive(x, w, b, stride, 1)[1])[0]) < 1e-12
