"""Each method against its own definition, for the details a comparison on one input can miss:
SmoothGrad's noise scale, integrated gradients from a baseline other than black, the sanity
cascade's order, Adam's bias correction, the sign of the regularizers as the commands use them,
receptive-field offsets, and an epoch that visits every training image once."""
import os

import numpy as np
import pytest
from PIL import Image

from fixtures import golden_network
from minicnn import saliency as S
from minicnn.gradcheck import rel_error
from minicnn.network import Layer, Network
from minicnn.optim import Adam

from minicnn.saliency import sanity
from minicnn.vgg19 import make_vgg
from minicnn.visualize import PixelParam, objectives, render

DATA = os.path.join(os.path.dirname(__file__), "data")
TORCHVISION = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


@pytest.fixture(scope="module")
def net64():
    net = golden_network(dict(np.load(os.path.join(DATA, "golden_vgg.npz"))), np.float64)
    net.meta["preprocessing"] = TORCHVISION
    return net


def test_smoothgrad_is_the_mean_gradient_at_noisy_copies(net64):
    """SmoothGrad = mean over k of grad F(x + sigma * eps_k), eps_k ~ N(0, 1) drawn from the
    seed; sigma is the --noise fraction of the pixel range [0, 1]. Two sigmas, so a wrong
    scale (sigma^2, 255 sigma, sigma / 2) cannot pass."""
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 40, 36))
    for sigma in (0.1, 0.3):
        eps = np.random.default_rng(5).standard_normal((6, 3, 40, 36)).astype(np.float32) * np.float32(sigma)
        _, grads = S.class_gradient(net64, x + eps, [2] * 6)
        got = S.smoothgrad(net64, x, [2], samples=6, noise=sigma, seed=5, batch=4).attribution[0]
        assert rel_error(got, grads.mean(axis=0)) < 1e-10, sigma
    vanilla = S.vanilla(net64, x, [2]).attribution[0]
    assert rel_error(S.smoothgrad(net64, x, [2], samples=3, noise=0.0).attribution[0], vanilla) < 1e-12


def test_integrated_gradients_from_a_grey_baseline(net64):
    """attribution = (x - x0) * mean gradient on the path from x0: completeness holds for a
    grey baseline x0 (it would not with x in place of x - x0), and the attribution is the
    definition computed here with the path written out."""
    x = np.random.default_rng(2).uniform(0, 1, (1, 3, 40, 36))
    grey = np.full((3, 40, 36), 0.5)
    r = S.integrated(net64, x, [4], steps=256, baseline=grey)
    c = r.completeness[0]
    assert abs(c["sum_of_attributions"] - c["score_difference"]) < 0.02 * abs(c["score_difference"])
    ends = net64.forward(np.stack([x[0], grey]))[:, 4]
    assert c["score_difference"] == pytest.approx(ends[0] - ends[1])
    alphas = (np.arange(8) + 0.5) / 8
    _, grads = S.class_gradient(net64, grey + alphas[:, None, None, None] * (x - grey), [4] * 8)
    r8 = S.integrated(net64, x, [4], steps=8, baseline=grey)
    assert rel_error(r8.attribution[0], (x[0] - grey) * grads.mean(axis=0)) < 1e-10


class _Watch:
    """A progress bar that records, after each cascade step, which layers differ from their
    trained weights."""
    def __init__(self, net, trained):
        self.net, self.trained, self.seen = net, trained, []

    def update(self, n):
        self.seen.append([name for name, layer in self.net.params()
                          if not np.array_equal(layer.w, self.trained[name])])


def test_sanity_cascade_randomizes_from_the_top_cumulatively(net64):
    net64.freeze()          # as a loaded network is: the cascade swaps arrays, never writes them
    trained = {name: layer.w.copy() for name, layer in net64.params()}
    names = list(trained)
    watch = _Watch(net64, trained)
    x = np.random.default_rng(3).uniform(0, 1, (1, 3, 40, 36))
    order, maps = sanity.cascade(net64, x, 1, ["vanilla"], {}, progress=watch)
    assert order == names[::-1]
    assert watch.seen == [[]] + [names[len(names) - k:] for k in range(1, len(names) + 1)]
    assert all(np.array_equal(layer.w, trained[name]) for name, layer in net64.params())   # restored
    assert len(maps["vanilla"]) == len(names) + 1


def test_adam_first_steps_are_lr_sized_whatever_the_gradient_scale():
    """With bias correction, m_hat / sqrt(v_hat) = g / |g| on step 1: every parameter moves by lr
    (times its gradient's sign), for gradients of any size. Without it the step is 3.16 lr."""
    rng = np.random.default_rng(0)
    for scale in (1e-2, 1.0, 1e3):
        p = np.zeros(50)
        g = rng.standard_normal(50) * scale
        opt = Adam([p], lr=0.01, sign=-1)
        opt.step([g])
        assert np.allclose(p, -0.01 * np.sign(g), rtol=1e-3), scale
        before = p.copy()
        opt.step([g])                              # a constant gradient: still lr per step
        assert np.allclose(p - before, -0.01 * np.sign(g), rtol=1e-3), scale


@pytest.mark.parametrize("penalty", ["l2", "tv"])
def test_subtracted_regularizers_shrink(penalty):
    """render ascends the score; a regularizer enters with a minus sign and must go down."""
    term = getattr(objectives, penalty)()
    param = PixelParam()
    start = param.forward(param.init(2, 16, np.random.default_rng(0)))[0]
    start_value = term.forward({objectives.INPUT: start})[0].sum()
    net = Network([Layer("flatten", "flatten")], input_shape=(3, 16, 16), meta={"preprocessing": TORCHVISION})
    images, history, _ = render(net, -1.0 * term, param, steps=20, lr=0.01, size=16, n_images=2)
    assert term.forward({objectives.INPUT: images})[0].sum() < 0.5 * start_value
    assert history[-1] > history[0]


def test_class_model_l2_keeps_the_image_near_grey(tmp_path):
    """python -m minicnn.visualize fc6:K uses an L2 penalty by default: with a strong one the
    image stays closer to grey than with none (a wrong sign would push it away)."""
    from minicnn.visualize.__main__ import main
    spread = {}
    for l2 in ("0", "3"):
        out = tmp_path / f"l2_{l2}.png"
        main(["fc6:3", "--steps", "40", "--l2", l2, "--quiet", "--out", str(out), "--seed", "1"])
        spread[l2] = np.abs(np.asarray(Image.open(out), dtype=np.float64) / 255 - 0.5).mean()
    assert spread["3"] < 0.7 * spread["0"], spread


def test_receptive_field_offsets_by_perturbation():
    """net.receptive_field(name) = (size, stride, offset): the input pixels that can change a
    unit at (i, j) are rows offset + i*stride ... + size - 1 (clipped to the image). Found here
    directly: add 100 to one pixel at a time (all weights positive, so every path is live and
    a big value wins its max-pool window) and see which pixels move the unit."""
    rng = np.random.default_rng(0)
    layers = [Layer("c1", "conv", w=np.abs(rng.standard_normal((2, 1, 3, 3))), b=np.zeros(2), pad=1),
              Layer("r1", "relu"), Layer("p1", "pool", kernel=2, stride=2),
              Layer("c2", "conv", w=np.abs(rng.standard_normal((2, 2, 3, 3))), b=np.zeros(2), pad=0),
              Layer("c3", "conv", w=np.abs(rng.standard_normal((2, 2, 5, 5))), b=np.zeros(2), stride=2, pad=2),
              Layer("p2", "pool", kernel=3, stride=1)]
    net = Network(layers, input_shape=(1, 40, 40))
    x = rng.uniform(0, 1, (1, 1, 40, 40))
    hits = np.repeat(x, 1600, axis=0)
    hits[np.arange(1600), 0, np.arange(1600) // 40, np.arange(1600) % 40] += 100
    for name in ("c1", "p1", "c2", "c3", "p2"):
        base = net.forward(x, until=name)[0, 0]
        moved = net.forward(hits, until=name)[:, 0] != base      # (1600, h, w)
        size, stride, offset = net.receptive_field(name)
        for i, j in ((1, 2), (base.shape[0] // 2, base.shape[1] - 2)):
            support = moved[:, i, j].reshape(40, 40)
            rows, cols = np.flatnonzero(support.any(axis=1)), np.flatnonzero(support.any(axis=0))
            assert rows[0] == max(0, offset + i * stride) and rows[-1] == min(39, offset + i * stride + size - 1), name
            assert cols[0] == max(0, offset + j * stride) and cols[-1] == min(39, offset + j * stride + size - 1), name


class _Recorder:
    """Training images that remember which rows each batch took."""
    def __init__(self, images):
        self.images, self.taken = images, []

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        self.taken.append(np.asarray(idx))
        return self.images[idx]


def test_an_epoch_visits_every_training_image_once():
    from minicnn.training import train
    net = make_vgg(((4,),), (), 3, (3, 8, 8), seed=0)
    net.meta["preprocessing"] = TORCHVISION
    rng = np.random.default_rng(0)
    images = _Recorder(rng.uniform(0, 1, (48, 3, 8, 8)).astype(np.float32))
    labels = rng.integers(0, 3, 48)
    train(net, images, labels, epochs=2, batch=16, quiet=True)
    taken = images.taken
    assert len(taken) == 6 and all(len(t) == 16 for t in taken)
    for epoch in (taken[:3], taken[3:]):
        assert sorted(np.concatenate(epoch).tolist()) == list(range(48))
    assert not np.array_equal(np.concatenate(taken[:3]), np.concatenate(taken[3:]))   # reshuffled
