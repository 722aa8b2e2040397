"""The CPU engine (minicnn.fast.cpu.CPU) against the reference layers, path by path: blocked
im2col with the bias trick, dx as a convolution and by col2im, the transposed weight gradient,
Winograd F(2x2) and F(4x4), blocked max-pool, and the rule that picks among them."""
import numpy as np
import pytest

from minicnn import layers as L
from minicnn.fast import ceil_div, winograd
from minicnn.fast.cpu import CPU
from minicnn.gradcheck import numerical_gradient, rel_error
from test_layers import CONV_CASES, GRAD_TOL, conv_data, distinct_values


@pytest.mark.parametrize("algorithm", ["auto", "im2col", "winograd2", "winograd4"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_engine_conv_matches_the_reference(case, algorithm, rng):
    """Forward, dx, dw, db of every algorithm equal the reference's, and the caches are one
    type: the reference's backward takes the engine's cache and the engine's the reference's."""
    engine = CPU(algorithm=algorithm)
    x, w, b, stride, pad = conv_data(rng, case)
    ref, ref_cache = L.conv2d_forward_naive(x, w, b, stride, pad)
    out, cache = engine.conv2d_forward(x, w, b, stride, pad)
    assert rel_error(out, ref) < 1e-12
    dout = rng.standard_normal(out.shape)
    expected = L.conv2d_backward_naive(dout, ref_cache)
    for got in (engine.conv2d_backward(dout, cache), engine.conv2d_backward(dout, ref_cache),
                L.conv2d_backward(dout, cache)):
        for g, e in zip(got, expected):
            assert rel_error(g, e) < 1e-12
    dx_only = engine.conv2d_backward(dout, cache, param_grads=False)
    assert dx_only[1] is None and dx_only[2] is None and rel_error(dx_only[0], expected[0]) < 1e-12
    dw_only = engine.conv2d_backward(dout, cache, input_grad=False)
    assert dw_only[0] is None and rel_error(dw_only[1], expected[1]) < 1e-12


@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_blocked_columns_give_the_whole_result(case, rng):
    """One output row per block, a few rows, whole images: the same numbers as one block."""
    x, w, b, stride, pad = conv_data(rng, case)
    whole = CPU(algorithm="im2col")
    out, cache = whole.conv2d_forward(x, w, b, stride, pad)
    dout = rng.standard_normal(out.shape)
    expected = whole.conv2d_backward(dout, cache)
    for block in (1, 40, 200):
        engine = CPU(algorithm="im2col", cols_block=block)
        banded, cache = engine.conv2d_forward(x, w, b, stride, pad)
        assert rel_error(banded, out) < 1e-12
        for g, e in zip(engine.conv2d_backward(dout, cache), expected):
            assert rel_error(g, e) < 1e-12


def test_blocks_cover_the_output_once():
    """Blocks of 100 values at 50 values a row: two rows per block, one image at a time; with
    room for both images, one block."""
    assert list(CPU(cols_block=100).blocks(2, 3, 50)) == [(0, 1, 0, 2), (0, 1, 2, 3), (1, 2, 0, 2), (1, 2, 2, 3)]
    assert list(CPU(cols_block=300).blocks(2, 3, 50)) == [(0, 2, 0, 3)]


def test_dx_as_a_convolution_equals_col2im(rng):
    """The two ways the engine computes dx agree, whichever the rule picks."""
    engine = CPU(algorithm="im2col")
    x, w, b, _, _ = conv_data(rng, (2, 6, 8, 7, 4, 3, 1, 1))
    out, cache = engine.conv2d_forward(x, w, b, 1, 1)
    dout = rng.standard_normal(out.shape)
    assert engine.dx_as_conv(w.shape, 1, 1)                   # F = 4 <= 2C = 12
    via_conv = engine.backward_data_as_conv(dout, w, 1)
    dcols = w.reshape(4, -1).T @ dout.reshape(2, 4, -1)
    via_col2im = L.col2im(dcols, (2, 6, 10, 9), 3, 3, 1, 8, 7)[:, :, 1:-1, 1:-1]
    assert rel_error(via_conv, via_col2im) < 1e-12
    assert not engine.dx_as_conv((7, 3, 3, 3), 1, 1) and not engine.dx_as_conv((4, 6, 3, 3), 2, 1)


WINOGRAD_CASES = [(2, 3, 7, 9, 4, 3, 1, 1), (2, 3, 7, 7, 2, 3, 1, 0), (1, 5, 8, 8, 6, 3, 1, 1),
                  (3, 4, 5, 6, 3, 3, 1, 2), (1, 2, 3, 3, 2, 3, 1, 0)]   # odd, even, non-square, pad 0/1/2


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_equals_the_definition_and_its_gradients_check(case, m, monkeypatch, rng):
    """F(m x m, 3x3) gives the naive convolution (ragged sizes: the extra tile rows are cut
    off), in blocks of one tile row too; with it forced, dx (computed as a convolution, so by
    Winograd again) still passes the numerical gradient check."""
    x, w, b, stride, pad = conv_data(rng, case)
    expected, _ = L.conv2d_forward_naive(x, w, b, stride, pad)
    assert rel_error(winograd.conv3x3(x, w, b, pad, m), expected) < 1e-12
    monkeypatch.setattr(winograd, "BLOCK", {"cpu": 1})
    assert rel_error(winograd.conv3x3(x, w, b, pad, m), expected) < 1e-12
    engine = CPU(algorithm=f"winograd{m}")
    out, cache = engine.conv2d_forward(x, w, b, stride, pad)
    assert rel_error(out, expected) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx, dw, db = engine.conv2d_backward(dout, cache)
    forward = engine.conv2d_forward
    assert rel_error(dx, numerical_gradient(lambda v: forward(v, w, b, stride, pad)[0], x, dout)) < GRAD_TOL
    assert rel_error(dw, numerical_gradient(lambda v: forward(x, v, b, stride, pad)[0], w, dout)) < GRAD_TOL
    naive_dx = L.conv2d_backward_naive(dout, L.conv2d_forward_naive(x, w, b, stride, pad)[1])[0]
    assert rel_error(winograd.conv3x3_backward_data(dout, w, pad, m), naive_dx) < 1e-12   # no flipped copy


@pytest.mark.parametrize("m,tol", [(2, 1e-6), (4, 1e-5)])
def test_winograd_float32_on_a_vgg_sized_layer(m, tol, rng):
    """float32, 64 channels: within float32 round-off of the float64 result (by im2col), which
    m = 4's bigger transform constants make about 7 times larger than m = 2's."""
    x = rng.standard_normal((2, 64, 30, 30)).astype(np.float32)
    w = (rng.standard_normal((32, 64, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    exact, cache64 = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    got = winograd.conv3x3(x, w, b, 1, m)
    assert got.dtype == np.float32 and rel_error(got, exact) < tol
    dout = rng.standard_normal(got.shape).astype(np.float32)
    exact_dx = L.conv2d_backward(dout.astype(np.float64), cache64)[0]
    got_dx = winograd.conv3x3_backward_data(dout, w, 1, m)
    assert got_dx.dtype == np.float32 and rel_error(got_dx, exact_dx) < tol


def test_winograd_rule_picks_wide_3x3_layers(monkeypatch, rng):
    """"auto" (the measured rule) sends 3x3 stride-1 convolutions with >= 64 channels in and
    out to F(4x4, 3x3) where its 4x4 tiles cover at most 25% more than the output (sides that
    are multiples of 4, or 15x14: 16x16 tiles for 210 px), other ones with >= 256 channels to
    F(2x2, 3x3) (14x14: 31% more), and everything else to im2col; each gives the definition's
    result, and dx (a convolution too) goes the same way."""
    used = []
    real_fwd, real_bwd = winograd.conv3x3, winograd.conv3x3_backward_data
    monkeypatch.setattr(winograd, "conv3x3", lambda *a, **k: used.append(("fwd", a[4])) or real_fwd(*a, **k))
    monkeypatch.setattr(winograd, "conv3x3_backward_data",
                        lambda *a, **k: used.append(("bwd", a[3])) or real_bwd(*a, **k))
    engine = CPU()
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
        out, cache = engine.conv2d_forward(x, w, b, stride, 1)
        dout = rng.standard_normal(out.shape)
        dx = engine.conv2d_backward(dout, cache, param_grads=False)[0]
        assert used == ([("fwd", m), ("bwd", m)] if m else []), (shape, size)
        assert rel_error(out, L.conv2d_forward_naive(x, w, b, stride, 1)[0]) < 1e-12
        assert rel_error(dx, L.conv2d_backward_naive(dout, L.conv2d_forward_naive(x, w, b, stride, 1)[1])[0]) < 1e-12


def test_an_unknown_algorithm_is_refused():
    with pytest.raises(ValueError, match="winograd4"):
        CPU(algorithm="winograd3")


@pytest.mark.parametrize("shape,kernel,stride", [
    ((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 2, 2), ((2, 2, 7, 7), 3, 2), ((1, 3, 6, 5), 3, 1), ((1, 2, 9, 9), 2, 3)])
@pytest.mark.parametrize("block", [1, 40, 1 << 17])
def test_blocked_maxpool_matches_the_reference(shape, kernel, stride, block, rng):
    """Tiled, odd, overlapping and gapped windows, a plane or a few or all at a time."""
    engine = CPU(pool_block=block)
    x = distinct_values(rng, shape)
    out, cache = engine.maxpool2d_forward(x, kernel, stride)
    ref, ref_cache = L.maxpool2d_forward(x, kernel, stride)
    assert np.array_equal(out, ref)
    dout = rng.standard_normal(out.shape)
    assert np.array_equal(engine.maxpool2d_backward(dout, cache), L.maxpool2d_backward(dout, ref_cache))
    assert np.array_equal(engine.maxpool2d_backward(dout, ref_cache), L.maxpool2d_backward(dout, cache))


def test_blocked_maxpool_ties_go_to_the_first_position():
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 2, 3] = x[0, 0, 3, 2] = 2.0
    out, cache = CPU().maxpool2d_forward(x, 2, 2)
    _, ref_cache = L.maxpool2d_forward(x, 2, 2)
    dout = np.full(out.shape, 7.0)
    assert np.array_equal(CPU().maxpool2d_backward(dout, cache), L.maxpool2d_backward(dout, ref_cache))


def test_a_cache_of_another_layer_is_refused_by_the_engine(rng):
    x, w, b, stride, pad = conv_data(rng, CONV_CASES[0])
    out, conv_cache = CPU().conv2d_forward(x, w, b, stride, pad)
    pooled, pool_cache = CPU().maxpool2d_forward(out, 2, 2)
    with pytest.raises(TypeError, match="ConvCache"):
        CPU().conv2d_backward(np.ones_like(out), pool_cache)
    with pytest.raises(TypeError, match="PoolCache"):
        CPU().maxpool2d_backward(np.ones_like(pooled), conv_cache)


def test_ceil_div():
    assert [ceil_div(a, 4) for a in (1, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]
