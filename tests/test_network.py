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
    p = net.run(x, keep=set(net.names), record=False)
    logits = p.output
    assert logits.dtype == dtype
    for name in net.names:
        assert rel_error(p.activations[name], golden[f"act/{name}"]) < tol, name
    assert rel_error(logits, golden["logits"]) < tol


@pytest.mark.parametrize("dtype,tol", [(np.float32, F32_TOL), (np.float64, F64_TOL)])
def test_golden_input_gradients(golden, dtype, tol):
    net = golden_network(golden, dtype)
    x = golden["input"].astype(dtype)
    p = net.run(x)
    dlogits = np.zeros_like(p.output)
    dlogits[:, int(golden["class"])] = 1
    assert rel_error(p.backward(dlogits), golden["grad_logit"]) < tol

    layer, channel = str(golden["mid_layer"]), int(golden["channel"])
    p = net.run(x, until=layer)
    dact = np.zeros_like(p.output)
    dact[:, channel] = 1.0 / (dact.shape[2] * dact.shape[3])  # d mean / d act
    assert rel_error(p.backward(dact), golden["grad_channel_mean"]) < tol


@pytest.mark.parametrize("engine", ["reference", "cpu"])
def test_the_textbook_layers_run_the_network_too(golden, engine):
    """net.engine = Reference() runs the layers of minicnn.layers: the same answers as PyTorch
    (float64), and as the CPU engine."""
    from minicnn.network import Reference
    net = golden_network(golden, np.float64)
    if engine == "reference":
        net.engine = Reference()
    p = net.run(golden["input"].astype(np.float64))
    assert rel_error(p.output, golden["logits"]) < F64_TOL
    dlogits = np.zeros_like(p.output)
    dlogits[:, int(golden["class"])] = 1
    assert rel_error(p.backward(dlogits), golden["grad_logit"]) < F64_TOL


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
        p = net.run(x, until=until)
        dout = rng.standard_normal(p.output.shape)
        dx = p.backward(dout)
        num = numerical_gradient(lambda v: net.forward(v, until=until), x, dout)
        assert rel_error(dx, num) < 1e-7, until


def test_parameter_gradients_only_when_asked():
    net = tiny_net()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 8, 6))
    dout = rng.standard_normal((3, 3))
    grads = {}
    dx = net.run(x).backward(dout, grads=grads)
    assert sorted(grads) == ["conv1_1", "conv2_1", "fc3", "fc4"]
    for name, layer in net.params():
        dw, db = grads[name]
        for param, analytic in ((layer.w, dw), (layer.b, db)):
            num = numerical_gradient(lambda _: net.forward(x), param, dout)
            assert rel_error(analytic, num) < 1e-7, name
    assert rel_error(net.run(x).backward(dout), dx) < 1e-14  # no grads dict: same dx
    # training's input_grad=False: no gradient of the input, the same parameter gradients
    without = {}
    assert net.run(x).backward(dout, grads=without, input_grad=False) is None
    assert sorted(without) == sorted(grads)
    for name in grads:
        assert all(np.array_equal(a, b) for a, b in zip(grads[name], without[name])), name


def test_forward_until_and_names():
    net = tiny_net()
    x = np.random.default_rng(7).standard_normal((1, 2, 8, 6))
    p = net.run(x, keep={"pool1", "fc3"}, record=False)
    full, kept = p.output, p.activations["pool1"]
    mid = net.forward(x, until="pool1")
    assert np.array_equal(mid, kept)
    assert mid.shape == (1, 3, 4, 3) == (1,) + net.output_shape("pool1")
    assert net.output_shape("fc4") == (3,) and full.shape == (1, 3)
    with pytest.raises(KeyError, match="conv1_1, relu1_1"):
        net.forward(x, until="conv9_9")


def test_the_tape_is_the_passs_and_is_used_once():
    """Inference records nothing; backward uses the tape up, so a second backward on the same
    pass is an error, not a gradient of old caches; the network keeps no state of its own."""
    net = tiny_net()
    x = np.random.default_rng(8).standard_normal((2, 2, 8, 6))
    p = net.run(x)
    assert np.array_equal(net.forward(x), p.output)                  # same numbers, no tape
    with pytest.raises(RuntimeError, match="recorded pass"):
        net.run(x, record=False).backward(np.ones((2, 3)))
    first = p.backward(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="used once"):
        p.backward(np.ones((2, 3)))
    assert np.array_equal(net.run(x).backward(np.ones((2, 3))), first)
    assert not hasattr(net, "activations") and not hasattr(net, "_tape")


def test_one_network_serves_two_threads(rng):
    """Passes are independent: two threads interleaving forward and backward on one network
    (no copy) get the gradients each gets alone."""
    import threading
    net = tiny_net()
    xs = [rng.standard_normal((2, 2, 8, 6)) for _ in range(2)]
    alone = [net.run(x).backward(np.ones((2, 3))) for x in xs]
    both = [threading.Barrier(2), [None, None]]

    def work(k):
        p = net.run(xs[k])
        both[0].wait()                            # both passes recorded before either goes back
        both[1][k] = p.backward(np.ones((2, 3)))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(a, b) for a, b in zip(alone, both[1]))


def test_pixels_in_pixel_gradients_out(rng):
    """The model's preprocessing is part of it: run(pixels) equals the layers on
    preprocess(pixels), and backward returns d score / d pixel (checked numerically)."""
    from minicnn.preprocess import KERAS_CAFFE, preprocess
    net = make_vgg(((3,), (4,)), (5,), 3, (3, 8, 6), seed=1, dtype=np.float64)
    bare = Network(net.layers, net.input_shape)
    net.meta["preprocessing"] = dict(KERAS_CAFFE, mean=[20.0, 50.0, 10.0])
    pixels = rng.uniform(0, 1, (2, 3, 8, 6))
    assert np.array_equal(net.forward(pixels), bare.forward(preprocess(pixels, net.preprocessing)))
    dout = rng.standard_normal((2, 3))
    dpixels = net.run(pixels).backward(dout)
    assert rel_error(dpixels, numerical_gradient(lambda v: net.forward(v), pixels, dout)) < 1e-7
    assert rel_error(dpixels, bare.run(pixels).backward(dout)) > 0.5       # not the bare gradient


def test_injected_gradients_sum_the_paths():
    """A score that reads two layers, s = <a, pool1> + <b, fc4>: backward from fc4 with the
    pool1 term injected gives ds/dx (checked numerically), and an unknown layer is refused."""
    net = tiny_net()
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 2, 8, 6))
    p = net.run(x, keep={"pool1"})
    a = rng.standard_normal(p.activations["pool1"].shape)
    b = rng.standard_normal((2, 3))
    dx = p.backward(b, inject={"pool1": a})

    def score(v):
        q = net.run(v, keep={"pool1"}, record=False)
        return np.array((a * q.activations["pool1"]).sum() + (b * q.output).sum())
    assert rel_error(dx, numerical_gradient(score, x, np.array(1.0))) < 1e-7
    with pytest.raises(KeyError, match="fc3"):
        net.run(x, until="pool1").backward(a, inject={"fc3": b})


def test_duplicate_names_refused():
    with pytest.raises(ValueError, match="unique"):
        Network([Layer("a", "relu"), Layer("a", "relu")])
