"""The CUDA kernels against the NumPy reference (skipped quietly without cupy or a GPU).

Tolerance: float32 sums of up to a few thousand products in a different order than NumPy's
BLAS; relative L2 differences are ~1e-7..1e-6, so 1e-5 leaves room and catches any indexing bug
(which is O(1)). Through VGG19's max-pools a near-tie can flip in float32, moving a bit of
gradient; whole-network gradient checks therefore use 2e-2 (see tests/test_network.py).
"""
import numpy as np
import pytest

from minicnn import layers as L
from minicnn.fast import winograd
from minicnn.backend import cuda_available
from minicnn.gradcheck import rel_error

pytestmark = pytest.mark.skipif(not cuda_available(), reason="needs cupy and a CUDA GPU")
TOL = 1e-5

# (N, C, H, W, F, K, stride, pad): several blocks and tiles, odd shapes, pad 0/1, stride 1/2
CASES = [
    (2, 3, 17, 19, 5, 3, 1, 1),
    (1, 8, 33, 31, 70, 3, 1, 1),      # more than 64 filters: two filter tiles in v3
    (2, 16, 23, 29, 9, 3, 2, 1),
    (3, 5, 20, 18, 12, 3, 1, 0),
    (1, 4, 15, 16, 7, 1, 1, 0),
    (2, 6, 21, 21, 10, 5, 2, 2),
    (1, 64, 14, 14, 130, 3, 1, 1),    # deep and small: split-K in v3
    (1, 3, 130, 140, 8, 3, 1, 1),     # many column tiles
    (2, 24, 19, 17, 40, 3, 1, 1),     # C a multiple of 8: v4's one-tap-per-slice loads
    (1, 32, 9, 9, 16, 3, 1, 0),       # ... with pad 0, and backward-as-convolution for C >= 16
    (2, 12, 21, 23, 136, 3, 2, 1),    # >= 128 filters (v5's tiles), two filter tiles, C not a multiple of 8
    (1, 16, 40, 36, 128, 3, 1, 0),    # v5 with one-tap slices, pad 0, 11 column tiles
    (1, 128, 12, 10, 24, 3, 1, 1),    # 128 input channels: v5 computes dx (the flipped kernel has 128 filters)
]


def data(case, seed=0):
    N, C, H, W, F, K, stride, pad = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(np.float32),
            rng.standard_normal((F, C, K, K)).astype(np.float32),
            rng.standard_normal(F).astype(np.float32), stride, pad)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_forward_kernels(case, version):
    import cupy as cp
    from minicnn.fast import cuda
    x, w, b, stride, pad = data(case)
    ref, _ = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad)
    out, _ = cuda.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), stride, pad, version=version)
    assert rel_error(cp.asnumpy(out), ref) < TOL


@pytest.mark.parametrize("case", CASES)
def test_v5_tiles_on_any_layer(case):
    """v5's kernel itself, also where version 5 would hand the layer to v4 (under 128 filters):
    the bench times it there to show why."""
    import cupy as cp
    from minicnn.fast import cuda
    x, w, b, stride, pad = data(case)
    ref, _ = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad)
    F, _, K, _ = w.shape
    w_ohwi = cp.asarray(np.ascontiguousarray(w.transpose(0, 2, 3, 1)))
    out = cuda._implicit_gemm(5, cp.asarray(x), w_ohwi, cp.asarray(b), F, K, K, stride, pad, *ref.shape[2:])
    assert rel_error(cp.asnumpy(out), ref) < TOL


def test_version_5_runs_v5_from_128_filters():
    from minicnn.fast import cuda
    assert [cuda.gemm_version(5, f) for f in (3, 64, 127, 128, 512)] == [4, 4, 4, 5, 5]
    assert cuda.gemm_version(4, 512) == 4 and cuda.gemm_version(3, 512) == 3


def test_winograd_rule_on_the_gpu():
    from minicnn.fast import cuda
    w = (128, 128, 3, 3)
    assert cuda.winograd_tile(8, w, 1, 1, (16, 16)) == 4
    assert cuda.winograd_tile(7, w, 1, 1, (16, 16)) is None                   # too few images
    assert cuda.winograd_tile(8, (128, 64, 3, 3), 1, 1, (16, 16)) is None     # too few channels
    assert cuda.winograd_tile(8, w, 1, 1, (14, 14)) is None                   # 4-px tiles would not fit
    assert cuda.winograd_tile(8, w, 1, 1, (16, 15)) is None                   # ragged: the CPU's, not measured here
    assert cuda.winograd_tile(8, w, 2, 1, (8, 8)) is None                     # stride 2
    assert cuda.winograd_tile(8, (128, 128, 5, 5), 1, 2, (16, 16)) is None    # 5x5


@pytest.mark.parametrize("N,C,H,W,F,pad,winograd_runs", [
    (8, 128, 16, 12, 128, 1, ["forward", "dx"]),
    (9, 136, 10, 14, 128, 0, ["forward"]),        # dx is 10x14: not in 4-px tiles, so on the kernels
])
def test_winograd_on_the_gpu_equals_numpy(N, C, H, W, F, pad, winograd_runs, monkeypatch):
    """A batch of 8 or more through a wide 3x3 layer: forward and dx run by Winograd F(4x4)
    on the GPU where the rule says so (seen: the calls are counted), equal to NumPy in float64;
    one image fewer than the rule's batch and they run on the kernels."""
    import cupy as cp
    from minicnn.fast import cuda
    calls = []
    monkeypatch.setattr(cuda, "conv3x3", lambda *a, **k: calls.append("forward") or winograd.conv3x3(*a, **k))
    monkeypatch.setattr(cuda, "conv3x3_backward_data",
                        lambda *a, **k: calls.append("dx") or winograd.conv3x3_backward_data(*a, **k))
    for n in (N, cuda.WINOGRAD_MIN_BATCH - 1):
        x, w, b, _, _ = data((n, C, H, W, F, 3, 1, pad), seed=4)
        out64, cache64 = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, pad)
        dout = np.random.default_rng(5).standard_normal(out64.shape)
        dx64, dw64, _ = L.conv2d_backward(dout, cache64)
        out, cache = cuda.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), 1, pad)
        dx, dw, _ = cuda.conv2d_backward(cp.asarray(dout.astype(np.float32)), cache)
        assert rel_error(cp.asnumpy(out), out64) < TOL
        assert rel_error(cp.asnumpy(dx), dx64) < TOL
        assert rel_error(cp.asnumpy(dw), dw64) < TOL
        assert calls == (winograd_runs if n == N else [])
        calls.clear()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("version", [1, 3, 4, 5])
def test_backward_kernels(case, version):
    import cupy as cp
    from minicnn.fast import cuda
    x, w, b, stride, pad = data(case, seed=1)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    out, cache = L.conv2d_forward(x64, w64, b64, stride, pad)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx, dw, db = L.conv2d_backward(dout, cache)
    _, gcache = cuda.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), stride, pad)
    gdx, gdw, gdb = cuda.conv2d_backward(cp.asarray(dout.astype(np.float32)), gcache,
                                         version=version, weight_version=1 if version == 1 else 2)
    assert rel_error(cp.asnumpy(gdx), dx) < TOL
    assert rel_error(cp.asnumpy(gdw), dw) < TOL
    assert rel_error(cp.asnumpy(gdb), db) < TOL


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 2), (3, 1)])
def test_pool_and_relu_kernels(kernel, stride):
    import cupy as cp
    from minicnn.fast import cuda
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, (2, 3, 13, 11)).astype(np.float32)   # many ties
    out, cache = L.maxpool2d_forward(x, kernel, stride)
    gout, gcache = cuda.maxpool2d_forward(cp.asarray(x), kernel, stride)
    assert np.array_equal(cp.asnumpy(gout), out)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert rel_error(cp.asnumpy(cuda.maxpool2d_backward(cp.asarray(dout), gcache)),
                     L.maxpool2d_backward(dout, cache)) < TOL
    y = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    r, rc = L.relu_forward(y)
    gr, grc = cuda.relu_forward(cp.asarray(y))
    assert np.array_equal(cp.asnumpy(gr), r)
    d = rng.standard_normal(y.shape).astype(np.float32)
    assert np.array_equal(cp.asnumpy(cuda.relu_backward(cp.asarray(d), grc)), L.relu_backward(d, rc))
    from minicnn.saliency.methods import guided_relu        # a rule of saliency's, on CuPy arrays
    assert np.array_equal(cp.asnumpy(guided_relu(cp.asarray(d), grc)), guided_relu(d, rc))
    from minicnn.layers import PoolCache                     # the GPU's pool cache is its own type
    with pytest.raises(TypeError, match="GpuPoolCache"):
        cuda.maxpool2d_backward(cp.asarray(dout), PoolCache(*[cp.asarray(a) for a in cache[:2]], kernel, stride))


def test_vgg19_forward_saliency_and_vis_step_match_cpu():
    import cupy as cp
    from minicnn.vgg19 import vgg19
    cpu = vgg19(seed=0)
    gpu = vgg19(seed=0).to("cuda")
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    p, gp = cpu.run(x), gpu.run(cp.asarray(x))
    assert rel_error(cp.asnumpy(gp.output), p.output) < 1e-4
    d = np.zeros_like(p.output)
    d[0, 3] = 1
    dx = p.backward(d)
    gdx = gp.backward(cp.asarray(d))
    assert rel_error(cp.asnumpy(gdx), dx) < 2e-2      # max-pool near-ties, see module docstring
    p, gp = cpu.run(x, until="conv3_3"), gpu.run(cp.asarray(x), until="conv3_3")
    assert rel_error(cp.asnumpy(gp.output), p.output) < 1e-4
    dact = np.zeros_like(p.output)
    dact[0, 5] = 1.0 / (dact.shape[2] * dact.shape[3])
    assert rel_error(cp.asnumpy(gp.backward(cp.asarray(dact))), p.backward(dact)) < 2e-2


def test_training_step_matches_cpu():
    import cupy as cp
    from minicnn.training import shapes_network
    cpu, gpu = shapes_network(seed=4), shapes_network(seed=4).to("cuda")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((16, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 8, 16)
    p, gp = cpu.run(x), gpu.run(cp.asarray(x))
    loss, d = L.softmax_cross_entropy(p.output, y)
    gloss, gd = L.softmax_cross_entropy(gp.output, cp.asarray(y))
    assert abs(float(gloss) - float(loss)) < 1e-4
    grads, ggrads = {}, {}
    p.backward(d, grads=grads)
    gp.backward(gd, grads=ggrads)
    for name in grads:
        for a, b in zip(grads[name], ggrads[name]):
            assert rel_error(cp.asnumpy(b), a) < 1e-3, name


def test_saliency_methods_and_render_match_cpu():
    """Every saliency method and a few feature-visualization steps: GPU equals CPU."""
    import cupy as cp
    from minicnn.visualize import objectives
    from minicnn import saliency as S
    from minicnn.visualize.param import FourierParam
    from minicnn.visualize.transforms import standard_transforms
    from minicnn.visualize import render
    from minicnn.weights import load_model
    cpu, gpu = load_model("shapes"), load_model("shapes").to("cuda")
    x = np.random.default_rng(6).uniform(0, 1, (2, 3, 32, 32)).astype(np.float32)
    for method in S.METHODS:
        a = S.run_method(method, cpu, x, [1, 4], {"samples": 4, "steps": 8})
        b = S.run_method(method, gpu, cp.asarray(x), [1, 4], {"samples": 4, "steps": 8})
        if method == "smoothgrad":     # the GPU draws its own noise: compare on the same noise
            noise = np.random.default_rng(7).normal(0, 0.15, (4, 3, 32, 32)).astype(np.float32)
            a = S.smoothgrad(cpu, x, [1, 4], noise_tensor=noise)
            b = S.smoothgrad(gpu, cp.asarray(x), [1, 4], noise_tensor=noise)
        assert rel_error(cp.asnumpy(b.saliency), a.saliency) < 1e-3, method
    kw = dict(steps=5, seed=2, size=48, n_images=2, transforms=standard_transforms(48))
    img_cpu, h_cpu, _ = render(cpu, objectives.channel("conv2_2", [2, 5]), FourierParam(), **kw)
    img_gpu, h_gpu, _ = render(gpu, objectives.channel("conv2_2", [2, 5]), FourierParam(), **kw)
    assert rel_error(img_gpu, img_cpu) < 1e-3 and abs(h_gpu[-1] - h_cpu[-1]) < 1e-2 * (1 + abs(h_cpu[-1]))


def test_curve_scores_match_cpu():
    """python -m minicnn.curves --device cuda: the same responses and curve detectors."""
    from minicnn import curves
    from minicnn.weights import load_model
    cpu, gpu = load_model("shapes"), load_model("shapes").to("cuda")
    a, pa = curves.analyze(cpu, "conv3_1", null_copies=1)
    b, pb = curves.analyze(gpu, "conv3_1", null_copies=1)
    assert rel_error(pb["responses"], pa["responses"]) < 1e-4
    assert [s["channel"] for s in a if s["curve_detector"]] == [s["channel"] for s in b if s["curve_detector"]]
