"""Feature visualization: every gradient and adjoint, the optimization, and the command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn.gradcheck import numerical_gradient, rel_error
from minicnn.vgg19 import make_vgg
from minicnn.visualize import (FourierParam, PixelParam, channel_activations, objectives, parse_channels,
                               render)
from minicnn.visualize import transforms as T
from fixtures import golden_network

DATA = os.path.join(os.path.dirname(__file__), "data")
GRAD_TOL = 1e-7   # float64 centered differences, as in test_layers.py


@pytest.mark.parametrize("make,shape", [
    (lambda: objectives.channel("a", [1, 0, 2]), (3, 4, 5, 6)),
    (lambda: objectives.channel("a", [3, 1]), (2, 5)),             # a linear layer: class logits
    (lambda: objectives.neuron("a", [2, 0]), (2, 3, 5, 4)),
    (lambda: objectives.neuron("a", [1], y=1, x=3), (1, 2, 4, 5)),
    (lambda: objectives.deepdream("a"), (2, 3, 4, 4)),
    (lambda: objectives.diversity("a"), (3, 4, 5, 6)),
    (lambda: objectives.diversity("a"), (2, 5, 3, 3)),
    (lambda: objectives.diversity("a", group=2), (4, 3, 3, 2)),   # the atlas: groups of renders
])
def test_objective_gradients(make, shape, rng):
    """d (sum_n dscore_n score_n) / d act, by hand, against centred differences, for a random
    dscore (not just ones: a wrong per-image weighting would pass with ones)."""
    obj = make()
    act = rng.standard_normal(shape)
    score, cache = obj.forward({"a": act})
    assert score.shape == (shape[0],)
    dscore = rng.standard_normal(shape[0])
    dact = obj.backward(dscore, cache)["a"]
    num = numerical_gradient(lambda a: obj.forward({"a": a})[0], act, dscore)
    assert rel_error(dact, num) < GRAD_TOL


def test_grouped_diversity_is_each_group_on_its_own(rng):
    """Groups of a batch are pushed apart only within themselves: the scores of a batch of two
    groups are the scores of each group alone, and no gradient crosses from one to the other."""
    a = rng.standard_normal((6, 3, 4, 4))
    whole = objectives.diversity("a", group=3)
    score, cache = whole.forward({"a": a})
    alone = [objectives.diversity("a").forward({"a": a[k:k + 3]})[0] for k in (0, 3)]
    assert np.allclose(score, np.concatenate(alone))
    assert not np.allclose(score, objectives.diversity("a").forward({"a": a})[0])
    dscore = np.array([1.0, 1, 1, 0, 0, 0])
    assert np.all(whole.backward(dscore, cache)["a"][3:] == 0)
    with pytest.raises(ValueError, match="groups of 4"):
        objectives.diversity("a", group=4).forward({"a": a})


@pytest.mark.parametrize("make", [lambda: objectives.l2(), lambda: objectives.tv()], ids=["l2", "tv"])
def test_regularizer_gradients(make, rng):
    """The regularizers are objectives on the image itself (INPUT)."""
    obj = make()
    pixels = rng.uniform(0, 1, (2, 3, 5, 6))
    dscore = rng.standard_normal(2)
    score, cache = obj.forward({objectives.INPUT: pixels})
    grad = obj.backward(dscore, cache)[objectives.INPUT]
    num = numerical_gradient(lambda p: obj.forward({objectives.INPUT: p})[0], pixels, dscore)
    assert rel_error(grad, num) < GRAD_TOL


def test_regularizer_values_by_hand():
    p = np.full((1, 3, 2, 2), 0.5)
    p[0, 0, 0, 0] = 1.5                       # one pixel 1 above the centre 0.5
    assert objectives.l2().forward({objectives.INPUT: p})[0][0] == 1.0
    # its two neighbours differ by 1: two squared differences of 1
    assert objectives.tv().forward({objectives.INPUT: p})[0][0] == 2.0


def test_diversity_by_hand():
    """Two images with the same style score 1/N each (cosine 1), orthogonal styles 0."""
    a = np.zeros((2, 2, 1, 1))
    a[:, 0] = 1.0                              # both images: only channel 0 active
    assert np.allclose(objectives.diversity("a").forward({"a": a})[0], [0.5, 0.5])
    a[1] = [[[0.0]], [[1.0]]]                  # image 1: only channel 1: orthogonal Gram matrices
    assert np.allclose(objectives.diversity("a").forward({"a": a})[0], [0.0, 0.0])


def test_objectives_compose(rng):
    """Sums, differences and multiples: scores and gradients add, per layer; layers are merged."""
    acts = {"a": rng.standard_normal((2, 3, 4, 4)), "b": rng.standard_normal((2, 5, 2, 2)),
            objectives.INPUT: rng.uniform(0, 1, (2, 3, 6, 6))}
    c, d, r = objectives.channel("a", [0, 2]), objectives.diversity("b"), objectives.l2()
    combo = 2 * c - 0.5 * d - r + c
    assert combo.layers == ("a", "b", objectives.INPUT)
    score, cache = combo.forward(acts)
    expected = 3 * c.forward(acts)[0] - 0.5 * d.forward(acts)[0] - r.forward(acts)[0]
    assert np.allclose(score, expected)
    dscore = rng.standard_normal(2)
    grads = combo.backward(dscore, cache)
    assert np.allclose(grads["a"], c.backward(3 * dscore, c.forward(acts)[1])["a"])
    assert np.allclose(grads["b"], d.backward(-0.5 * dscore, d.forward(acts)[1])["b"])
    for layer in grads:
        num = numerical_gradient(lambda v: combo.forward(dict(acts, **{layer: v}))[0], acts[layer], dscore)
        assert rel_error(grads[layer], num) < GRAD_TOL


def test_fourier_parameterization_backward(rng):
    p = FourierParam()
    params = p.init(2, 8, rng).astype(np.float64) * 50    # away from 0: the sigmoid is curved
    p.scale = p.scale.astype(np.float64)
    dpix = rng.standard_normal((2, 3, 8, 8))
    pixels, cache = p.forward(params)
    assert rel_error(p.backward(dpix, cache), numerical_gradient(lambda q: p.forward(q)[0], params, dpix)) < GRAD_TOL
    assert pixels.shape == (2, 3, 8, 8) and 0 < pixels.min() and pixels.max() < 1


def test_fourier_scale_favours_low_frequencies():
    """A unit step on every coefficient changes low frequencies as much as high ones would
    without the scale: the scale is 1/frequency, largest at the lowest frequencies."""
    s = FourierParam()._scale(16, np)
    assert s[0, 0] == s.max() == 16 and s[8, 8] == s.min()


@pytest.mark.parametrize("t", [T.Jitter(3), T.Roll(2), T.RandomScale([0.9]), T.RandomScale([1.1]),
                               T.RandomScale([1.3]), T.RandomRotate([7]), T.RandomRotate([-10])],
                         ids=lambda t: type(t).__name__)
def test_transform_adjoint_identity(t, rng):
    """<A x, y> = <x, A^T y> for random x, y: the adjoint is exactly right."""
    x = rng.standard_normal((2, 3, 11, 11))
    out, cache = t.forward(x, np.random.default_rng(1))
    y = rng.standard_normal(out.shape)
    lhs = np.sum(out * y)
    rhs = np.sum(x * t.backward(y, cache))
    assert abs(lhs - rhs) < 1e-10 * max(1, abs(lhs))


def test_warp_tables_are_built_once_per_choice(monkeypatch, rng):
    """100 draws from 3 angles build 3 bilinear tables (kept on the device after that), and a
    drawn table is the one its angle gives."""
    built = []
    make = T._bilinear_table
    monkeypatch.setattr(T, "_bilinear_table", lambda *a: built.append(a) or make(*a))
    rotate, x = T.RandomRotate([-5, 0, 5]), rng.standard_normal((1, 3, 9, 9))
    draws = np.random.default_rng(3)
    for _ in range(100):
        rotate.forward(x, draws)
    assert len(built) == 3
    out, _ = rotate.forward(x, np.random.default_rng(0))
    fresh = T.RandomRotate([-5, 0, 5])
    fresh.__dict__["_tables"] = {}                          # nothing kept: built now
    assert np.array_equal(out, fresh.forward(x, np.random.default_rng(0))[0])


def test_pad_adjoint_identity(rng):
    """Pad is affine (a constant border): its linear part is zero-padding, adjoint a crop."""
    pad = T.Pad(2, value=0.5)
    x = rng.standard_normal((1, 3, 7, 7))
    (out, cache), (zero, _) = pad.forward(x), pad.forward(np.zeros_like(x))
    linear = out - zero
    y = rng.standard_normal(linear.shape)
    assert abs(np.sum(linear * y) - np.sum(x * pad.backward(y, cache))) < 1e-10


def test_scale_and_rotate_by_identity_do_nothing(rng):
    x = rng.standard_normal((1, 2, 9, 9))
    assert np.allclose(T.RandomScale([1.0]).forward(x, rng)[0], x)
    assert np.allclose(T.RandomRotate([0]).forward(x, rng)[0], x)


def test_blur_keeps_flat_images_and_smooths_noise(rng):
    flat = np.full((1, 3, 6, 6), 0.3)
    assert np.allclose(T.blur(flat), flat)
    noise = rng.standard_normal((1, 3, 16, 16))
    assert T.blur(noise).std() < 0.6 * noise.std()


def test_redirected_relu_revives_dead_units():
    from minicnn.visualize.render import redirected_relu
    out = np.zeros((2, 4))                  # image 0: every unit dead
    out[1, 2] = 1.0                         # image 1: one unit alive
    dout = np.array([[1.0, -2.0, 3.0, -4.0], [1.0, -2.0, 3.0, -4.0]])
    g = redirected_relu(dout, out)
    assert np.array_equal(g[0], [1.0, 0.0, 3.0, 0.0])   # pushes up only where it would help
    assert np.array_equal(g[1], [0.0, 0.0, 3.0, 0.0])   # alive image: the true gradient


def test_channel_objective_gradient_matches_pytorch():
    """d mean(channel 5 of conv2_2) / d input from the objective + backward pass, against the
    PyTorch golden reference of tests/make_golden.py."""
    g = dict(np.load(os.path.join(DATA, "golden_vgg.npz")))
    net = golden_network(g, np.float64)
    p = net.run(g["input"].astype(np.float64), until=str(g["mid_layer"]))
    act = p.output
    objective = objectives.channel(str(g["mid_layer"]), [int(g["channel"])] * len(act))
    _, cache = objective.forward({str(g["mid_layer"]): act})
    dact = objective.backward(np.ones(len(act)), cache)[str(g["mid_layer"])]
    assert rel_error(p.backward(dact), g["grad_channel_mean"]) < 1e-10


def small_net():
    net = make_vgg(((6,), (8,)), (), 4, (3, 24, 24), seed=2, notop=True)
    net.meta["preprocessing"] = {"channel_order": "RGB", "scale": 1.0, "mean": [0.5] * 3, "std": [0.25] * 3}
    return net


@pytest.mark.parametrize("param", [PixelParam, FourierParam])
def test_objective_rises_and_is_deterministic(param):
    net = small_net()
    kw = dict(steps=30, lr=0.05, seed=3, size=24, n_images=2, transforms=T.standard_transforms(24))
    images, history, _ = render(net, objectives.channel("conv2_1", [1, 5]), param(), **kw)
    assert np.mean(history[-5:]) > np.mean(history[:5]) + 0.1, history
    again, history2, _ = render(net, objectives.channel("conv2_1", [1, 5]), param(), **kw)
    assert np.array_equal(images, again) and history == history2
    other, _, _ = render(net, objectives.channel("conv2_1", [1, 5]), param(), **dict(kw, seed=4))
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
    vis, _, _ = render(net, objectives.channel("conv3_1", [c]), PixelParam(), steps=100, size=32,
                       transforms=T.standard_transforms(32))
    before, after = channel_activations(net, "conv3_1", start)[0], channel_activations(net, "conv3_1", vis)[0]
    assert after[c] > before[c] + 10
    assert after[c] == after.max()


def test_parse_channels():
    assert parse_channels("0-3,7", 10) == [0, 1, 2, 3, 7]
    from minicnn.errors import UsageError
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
    picture = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32) / 255
    assert picture.shape == (2 * (14 + 128) + 4, 2 * 128 + 4, 3)   # 2x2 tiles: 4x enlarged, a 14-px label each
    tile = picture[14:14 + 128, :128]
    blocks = tile.reshape(32, 4, 32, 4, 3)
    assert np.array_equal(blocks, np.broadcast_to(blocks[:, :1, :, :1], blocks.shape))  # nearest neighbour
    assert tile.std() > 0.005                                      # and not one flat colour
    for r, c in ((0, 0), (0, 1), (1, 0), (1, 1)):                  # each tile has a label written above it
        strip = picture[r * 146:r * 146 + 14, c * 132:c * 132 + 128]
        assert (strip < 0.3).any() and (strip > 0.9).mean() > 0.5
    assert Image.open(tmp_path / "g.gif").n_frames >= 2
    assert Image.open(tmp_path / "g.gif").size == (2 * 128 + 4, 2 * (14 + 128) + 4)
    from fixtures import EXAMPLES, assert_one_line_error
    dream = tmp_path / "dream.png"
    done = run("relu2_2", "--from", EXAMPLES[0], "--steps", "3", "--out", str(dream), "--quiet")
    assert done.returncode == 0 and Image.open(dream).size == (128, 128), done.stderr   # 2x the 64-px input
    assert_one_line_error(run("conv9_9:1", "--out", str(tmp_path / "x.png")), "unknown layer")
    assert_one_line_error(run("conv2_2:99", "--out", str(tmp_path / "x.png")), "channels 0..31")
    assert_one_line_error(run("conv2_2", "--out", str(tmp_path / "x.png")), "which channel")
    assert_one_line_error(run("fc5:3", "--size", "32", "--out", str(tmp_path / "x.png")), "must be 64 px")
    assert not (tmp_path / "x.png").exists()


def test_a_class_model_is_named_after_its_class(tmp_path):
    done = subprocess.run([sys.executable, "-m", "minicnn.visualize", "fc6:3", "--steps", "2", "--quiet"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == ["fc6_3_house.png"]      # class 3 of the world model is 'house'


def test_ctrl_c_writes_the_picture_so_far(tmp_path):
    """SIGINT during a long optimization: the picture of the steps so far is written whole, the
    command says so and exits 130."""
    import signal
    import time
    out = tmp_path / "so_far.png"
    p = subprocess.Popen([sys.executable, "-m", "minicnn.visualize", "conv2_2:0", "--steps", "100000",
                          "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "visualizing" in p.stderr.readline()            # the optimization starts right after this line
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "so far" in err and err.strip().endswith("interrupted") and "Traceback" not in err
    from PIL import Image
    assert Image.open(out).size == (128, 14 + 128)
    assert os.listdir(tmp_path) == ["so_far.png"]

def test_diversity_spreads_a_batch_apart():
    """Four images of one channel: with the diversity term subtracted, render (which then reads
    two layers) ends with images whose styles are less alike, and the channel still rises."""
    net = small_net()
    kw = dict(steps=40, lr=0.05, seed=5, size=24, n_images=4, transforms=T.standard_transforms(24))
    same = objectives.channel("conv2_1", [3] * 4)
    div = objectives.diversity("conv1_1")

    def similarity(images):
        p = net.run(images, until="conv1_1", keep={"conv1_1"}, record=False)
        return float(div.forward(p.activations)[0].sum())
    plain, h_plain, _ = render(net, same, FourierParam(), **kw)
    spread, h_spread, _ = render(net, same - 5.0 * div, FourierParam(), **kw)
    assert similarity(spread) < similarity(plain) - 0.05, (similarity(spread), similarity(plain))
    param = FourierParam()
    start = param.forward(param.init(4, 24, np.random.default_rng(5)))[0]
    rise = channel_activations(net, "conv2_1", spread)[:, 3] - channel_activations(net, "conv2_1", start)[:, 3]
    assert (rise > 0).all(), rise
