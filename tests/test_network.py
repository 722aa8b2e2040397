"""The network against PyTorch (golden references) and against numerical gradients."""
import os

import numpy as np
import pytest

from minicnn.gradcheck import numerical_gradient, rel_error
from minicnn.network import Layer, Network
from minicnn.vgg19 import make_vgg

from fixtures import golden_network

DATA = os.path.join(os.path.dirname(__file__), "data")

# float32 tolerance: the references are float64 answers for the float32 weights and input; a
# float32 run accumulates sums of a few hundred terms, so its relative error is ~1e-6. 1e-4
# leaves room without letting a bug through. In float64 minicnn must match to ~1e-12.
F32_TOL, F64_TOL = 1e-4, 1e-10


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(os.path.join(DATA, "golden_vgg.npz")))


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32_TOL), (np.float64, F64_TOL)])
def test_golden_activations_and_logits(golden, dtype, tol):
    net = golden_network(golden, dtype)
    x = golden["input"].astype(dtype)
    logits = net.forward(x, keep=set(net.names))
    assert logits.dtype == dtype
    for name in net.names:
        assert rel_error(net.activations[name], golden[f"act/{name}"]) < tol, name
    assert rel_error(logits, golden["logits"]) < tol


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32_TOL), (np.float64, F64_TOL)])
def test_golden_input_gradients(golden, dtype, tol):
    net = golden_network(golden, dtype)
    x = golden["input"].astype(dtype)
    logits = net.forward(x)
    dlogits = np.zeros_like(logits)
    dlogits[:, int(golden["class"])] = 1
    assert rel_error(net.backward(dlogits), golden["grad_logit"]) < tol

    layer, channel = str(golden["mid_layer"]), int(golden["channel"])
    act = net.forward(x, until=layer)
    dact = np.zeros_like(act)
    dact[:, channel] = 1.0 / (act.shape[2] * act.shape[3])  # d mean / d act
    assert rel_error(net.backward(dact), golden["grad_channel_mean"]) < tol


@pytest.mark.parametrize("block", [None, 1, 4 * 56, 1 << 17])
def test_golden_pool_ties(block, monkeypatch):
    """Against PyTorch on inputs full of ties; also a block of planes at a time (block=1: one
    7x8 plane per block; 4 * 56: four planes, then the last two of the six); None: the
    reference layers."""
    from minicnn import layers as L
    from minicnn.fast.cpu import CPU
    ops = CPU(pool_block=block) if block else L
    g = np.load(os.path.join(DATA, "golden_pool_ties.npz"))
    for kernel, stride in ((2, 2), (3, 2), (3, 1)):
        key = f"k{kernel}s{stride}"
        out, cache = ops.maxpool2d_forward(g["input"], kernel, stride)
        assert np.array_equal(out, g[f"{key}/out"])
        assert np.array_equal(ops.maxpool2d_backward(g[f"{key}/dout"], cache), g[f"{key}/dx"])


def tiny_net(seed=0):
    """A float64 VGG-shaped net small enough for numerical gradients of every parameter."""
    net = make_vgg(((3,), (4,)), (5,), 3, (2, 8, 6), seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    for _, layer in net.params():  # non-zero biases, so their gradients are exercised
        layer.b[:] = rng.standard_normal(layer.b.shape) * 0.1
    return net


def test_backward_matches_numerical_gradient_at_every_layer():
    net = tiny_net()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 8, 6))
    for until in ("conv1_1", "relu1_1", "pool1", "conv2_1", "flatten", "fc3", "fc4"):
        out = net.forward(x, until=until)
        dout = rng.standard_normal(out.shape)
        dx = net.backward(dout)
        num = numerical_gradient(lambda v: net.forward(v, until=until), x, dout)
        assert rel_error(dx, num) < 1e-7, until


def test_parameter_gradients_only_when_asked():
    net = tiny_net()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 8, 6))
    out = net.forward(x)
    dout = rng.standard_normal(out.shape)
    grads = {}
    dx = net.backward(dout, grads=grads)
    assert sorted(grads) == ["conv1_1", "conv2_1", "fc3", "fc4"]
    for name, layer in net.params():
        dw, db = grads[name]
        for param, analytic in ((layer.w, dw), (layer.b, db)):
            num = numerical_gradient(lambda _: net.forward(x), param, dout)
            assert rel_error(analytic, num) < 1e-7, name
    net.forward(x)
    assert rel_error(net.backward(dout), dx) < 1e-14  # no grads dict: same dx
    # training's input_grad=False: no gradient of the input, the same parameter gradients
    net.forward(x)
    without = {}
    assert net.backward(dout, grads=without, input_grad=False) is None
    assert sorted(without) == sorted(grads)
    for name in grads:
        assert all(np.array_equal(a, b) for a, b in zip(grads[name], without[name])), name


def test_forward_until_and_names():
    net = tiny_net()
    x = np.random.default_rng(7).standard_normal((1, 2, 8, 6))
    full = net.forward(x, keep={"pool1", "fc3"})
    kept = net.activations["pool1"]
    mid = net.forward(x, until="pool1")
    assert np.array_equal(mid, kept)
    assert mid.shape == (1, 3, 4, 3) == (1,) + net.output_shape("pool1")
    assert net.output_shape("fc4") == (3,) and full.shape == (1, 3)
    with pytest.raises(KeyError, match="conv1_1, relu1_1"):
        net.forward(x, until="conv9_9")


def test_backward_needs_forward():
    with pytest.raises(RuntimeError, match="forward"):
        tiny_net().backward(np.zeros((1, 3)))


def test_tape_is_kept_only_when_needed():
    """Inference records nothing; backward consumes the tape, freeing each cache; to() drops a
    stale tape. Each case would otherwise let a second backward run on old caches."""
    net = tiny_net()
    x = np.random.default_rng(8).standard_normal((2, 2, 8, 6))
    recorded = net.forward(x)
    assert np.array_equal(net.forward(x, record=False), recorded)     # same numbers, no tape
    with pytest.raises(RuntimeError, match="recorded forward"):
        net.backward(np.ones((2, 3)))
    net.forward(x)
    assert len(net._tape) == len(net.layers)
    net.backward(np.ones((2, 3)))
    assert net._tape == []
    with pytest.raises(RuntimeError, match="recorded forward"):
        net.backward(np.ones((2, 3)))
    net.forward(x, keep={"pool1"})
    net.to("cpu")
    assert net._tape == [] and net.activations == {}


def test_injected_gradients_sum_the_paths():
    """A score that reads two layers, s = <a, pool1> + <b, fc4>: backward from fc4 with the
    pool1 term injected gives ds/dx (checked numerically), and an unknown layer is refused."""
    net = tiny_net()
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 8, 6))
    net.forward(x, keep={"pool1"})
    a = rng.standard_normal(net.activations["pool1"].shape)
    b = rng.standard_normal((2, 3))
    dx = net.backward(b, inject={"pool1": a})

    def score(v):
        out = net.forward(v, keep={"pool1"}, record=False)
        return np.array((a * net.activations["pool1"]).sum() + (b * out).sum())
    assert rel_error(dx, numerical_gradient(score, x, np.array(1.0))) < 1e-7
    net.forward(x, until="pool1")
    with pytest.raises(KeyError, match="fc3"):
        net.backward(a, inject={"fc3": b})


def test_duplicate_names_refused():
    with pytest.raises(ValueError, match="unique"):
        Network([Layer("a", "relu"), Layer("a", "relu")])
