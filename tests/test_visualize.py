"""Feature visualization: every gradient and adjoint, the optimization, and the command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import layers as L
from minicnn import objectives
from minicnn import transforms as T
from minicnn.gradcheck import numerical_gradient, rel_error
from minicnn.param import FourierParam, PixelParam
from minicnn.vgg19 import make_vgg
from minicnn.visualize import channel_activations, parse_channels, render
from test_network import golden_network

DATA = os.path.join(os.path.dirname(__file__), "data")
GRAD_TOL = 1e-7   # float64 centered differences, as in test_layers.py
rng = np.random.default_rng(7)


@pytest.mark.parametrize("make,shape", [
    (lambda: objectives.channel([1, 0, 2]), (3, 4, 5, 6)),
    (lambda: objectives.channel([3, 1]), (2, 5)),             # a linear layer: class logits
    (lambda: objectives.neuron([2, 0]), (2, 3, 5, 4)),
    (lambda: objectives.neuron([1], y=1, x=3), (1, 2, 4, 5)),
    (lambda: objectives.deepdream(), (2, 3, 4, 4)),
])
def test_objective_gradients(make, shape):
    obj = make()
    act = rng.standard_normal(shape)
    score, dact = obj(act)
    assert score.shape == (shape[0],)
    num = numerical_gradient(lambda a: obj(a)[0], act, np.ones(shape[0]))
    assert rel_error(dact, num) < GRAD_TOL


def test_fourier_parameterization_backward():
    p = FourierParam()
    params = p.init(2, 8, rng).astype(np.float64) * 50    # away from 0: the sigmoid is curved
    p.scale = p.scale.astype(np.float64)
    dpix = rng.standard_normal((2, 3, 8, 8))
    assert rel_error(p.backward(params, dpix), numerical_gradient(p.pixels, params, dpix)) < GRAD_TOL
    pixels = p.pixels(params)
    assert pixels.shape == (2, 3, 8, 8) and 0 < pixels.min() and pixels.max() < 1


def test_fourier_scale_favours_low_frequencies():
    """A unit step on every coefficient changes low frequencies as much as high ones would
    without the scale: the scale is 1/frequency, largest at the lowest frequencies."""
    s = FourierParam()._scale(16, np)
    assert s[0, 0] == s.max() == 16 and s[8, 8] == s.min()


@pytest.mark.parametrize("t", [T.Jitter(3), T.Roll(2), T.RandomScale([0.9]), T.RandomScale([1.1]),
                               T.RandomScale([1.3]), T.RandomRotate([7]), T.RandomRotate([-10])],
                         ids=lambda t: type(t).__name__)
def test_transform_adjoint_identity(t):
    """<A x, y> = <x, A^T y> for random x, y: the adjoint is exactly right."""
    x = rng.standard_normal((2, 3, 11, 11))
    applied = t.sample(np.random.default_rng(1), 11)
    y = rng.standard_normal(applied.forward(x).shape)
    lhs = np.sum(applied.forward(x) * y)
    rhs = np.sum(x * applied.adjoint(y))
    assert abs(lhs - rhs) < 1e-10 * max(1, abs(lhs))


def test_pad_adjoint_identity():
    """Pad is affine (a constant border): its linear part is zero-padding, adjoint a crop."""
    pad = T.Pad(2, value=0.5).sample(rng, 7)
    x = rng.standard_normal((1, 3, 7, 7))
    linear = pad.forward(x) - pad.forward(np.zeros_like(x))
    y = rng.standard_normal(linear.shape)
    assert abs(np.sum(linear * y) - np.sum(x * pad.adjoint(y))) < 1e-10


def test_scale_and_rotate_by_identity_do_nothing():
    x = rng.standard_normal((1, 2, 9, 9))
    assert np.allclose(T.RandomScale([1.0]).sample(rng, 9).forward(x), x)
    assert np.allclose(T.RandomRotate([0]).sample(rng, 9).forward(x), x)


@pytest.mark.parametrize("penalty", [lambda p: T.l2_penalty(p, 0.3), lambda p: T.tv_penalty(p, 0.7)])
def test_regularizer_gradients(penalty):
    pixels = rng.uniform(0, 1, (2, 3, 5, 6))
    value, grad = penalty(pixels)
    num = numerical_gradient(lambda p: np.array(penalty(p)[0]), pixels, np.array(1.0))
    assert rel_error(grad, num) < GRAD_TOL


def test_blur_keeps_flat_images_and_smooths_noise():
    flat = np.full((1, 3, 6, 6), 0.3)
    assert np.allclose(T.blur(flat), flat)
    noise = rng.standard_normal((1, 3, 16, 16))
    assert T.blur(noise).std() < 0.6 * noise.std()


def test_redirected_relu_revives_dead_units():
    out = np.zeros((2, 4))                  # image 0: every unit dead
    out[1, 2] = 1.0                         # image 1: one unit alive
    dout = np.array([[1.0, -2.0, 3.0, -4.0], [1.0, -2.0, 3.0, -4.0]])
    g = L.relu_backward(dout, out, rule="redirect")
    assert np.array_equal(g[0], [1.0, 0.0, 3.0, 0.0])   # pushes up only where it would help
    assert np.array_equal(g[1], [0.0, 0.0, 3.0, 0.0])   # alive image: the true gradient


def test_channel_objective_gradient_matches_pytorch():
    """d mean(channel 5 of conv2_2) / d input from the objective + backward pass, against the
    PyTorch golden reference of tests/make_golden.py."""
    g = dict(np.load(os.path.join(DATA, "golden_vgg.npz")))
    net = golden_network(g, np.float64)
    act = net.forward(g["input"].astype(np.float64), until=str(g["mid_layer"]))
    _, dact = objectives.channel([int(g["channel"])] * len(act))(act)
    assert rel_error(net.backward(dact), g["grad_channel_mean"]) < 1e-10


def small_net():
    net = make_vgg(((6,), (8,)), (), 4, (3, 24, 24), seed=2, notop=True)
    net.meta["preprocessing"] = {"channel_order": "RGB", "scale": 1.0, "mean": [0.5] * 3, "std": [0.25] * 3}
    return net


@pytest.mark.parametrize("param", [PixelParam, FourierParam])
def test_objective_rises_and_is_deterministic(param):
    net = small_net()
    kw = dict(steps=30, lr=0.05, seed=3, size=24, n_images=2, transforms=T.standard_transforms(24))
    images, history, _ = render(net, "conv2_1", objectives.channel([1, 5]), param(), **kw)
    assert np.mean(history[-5:]) > np.mean(history[:5]) + 0.1, history
    again, history2, _ = render(net, "conv2_1", objectives.channel([1, 5]), param(), **kw)
    assert np.array_equal(images, again) and history == history2
    other, _, _ = render(net, "conv2_1", objectives.channel([1, 5]), param(), **dict(kw, seed=4))
    assert not np.array_equal(images, other)


def test_shapes_model_channel_is_found():
    """On the trained shapes model: the visualization of conv3_1's most active channel (on
    data) excites that channel far more than the starting image does, and more than it
    excites any other channel of the layer."""
    from minicnn.shapes import make_dataset
    from minicnn.weights import load_model
    net = load_model("shapes")
    images, _, _ = make_dataset(100, seed=11)
    data_acts = channel_activations(net, "conv3_1", images)
    c = int(data_acts.max(axis=0).argmax())
    start = PixelParam().init(1, 32, np.random.default_rng(0))
    vis, _, _ = render(net, "conv3_1", objectives.channel([c]), PixelParam(), steps=100, size=32,
                       transforms=T.standard_transforms(32))
    before, after = channel_activations(net, "conv3_1", start)[0], channel_activations(net, "conv3_1", vis)[0]
    assert after[c] > before[c] + 10
    assert after[c] == after.max()


def test_parse_channels():
    assert parse_channels("0-3,7", 10) == [0, 1, 2, 3, 7]
    from minicnn.cli import UsageError
    with pytest.raises(UsageError, match="channels 0..9"):
        parse_channels("12", 10)
    with pytest.raises(UsageError, match="bad channel"):
        parse_channels("a", 10)


def run(*args):
    return subprocess.run([sys.executable, "-m", "minicnn.visualize", *args], capture_output=True, text=True)


def test_cli(tmp_path):
    out = tmp_path / "grid.png"
    done = run("features.7", "--channels", "0-3", "--steps", "5", "--size", "32", "--out", str(out),
               "--json", "--gif", str(tmp_path / "g.gif"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["layer"] == "conv2_2" and [c["channel"] for c in result["channels"]] == [0, 1, 2, 3]
    from PIL import Image
    assert Image.open(out).size == (2 * 32 + 2, 2 * 32 + 2)        # a 2x2 grid with 2-px gaps
    assert Image.open(tmp_path / "g.gif").n_frames >= 2
    from test_cli import EXAMPLES, assert_one_line_error
    dream = tmp_path / "dream.png"
    done = run("relu2_2", "--from", EXAMPLES[0], "--steps", "3", "--out", str(dream), "--quiet")
    assert done.returncode == 0 and Image.open(dream).size == (128, 128), done.stderr   # 2x the 64-px input
    assert_one_line_error(run("conv9_9:1", "--out", str(tmp_path / "x.png")), "unknown layer")
    assert_one_line_error(run("conv2_2:99", "--out", str(tmp_path / "x.png")), "channels 0..31")
    assert_one_line_error(run("conv2_2", "--out", str(tmp_path / "x.png")), "which channel")
    assert_one_line_error(run("fc5:3", "--size", "32", "--out", str(tmp_path / "x.png")), "must be 64 px")
    assert not (tmp_path / "x.png").exists()
