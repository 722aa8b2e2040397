"""Whole jobs against centred differences, on a tiny float64 network with its preprocessing:
one feature-visualization step (parameterization, every random transform, the network, an
objective of three terms on two layers and the pixels), and each gradient saliency method
(vanilla for a class and a unit, SmoothGrad, integrated gradients, Grad-CAM's channel weights).
Guided backprop is not a gradient (it is checked against Captum in test_saliency.py) and
occlusion needs none (checked against a brute-force loop in test_trust.py)."""
import numpy as np

from minicnn import saliency as S
from minicnn.saliency.methods import target_scores
from minicnn.gradcheck import numerical_gradient, rel_error
from minicnn.network import Network
from minicnn.preprocess import TORCHVISION
from minicnn.saliency import Unit
from minicnn.vgg19 import make_vgg
from minicnn.visualize import objectives
from minicnn.visualize.param import FourierParam
from minicnn.visualize.render import ascent_gradient
from minicnn.visualize.transforms import standard_transforms

TOL = 1e-6       # float64, h = 1e-5: a correct chain agrees to about 1e-9; a wrong one is off by O(1)


def tiny_net(seed=3):
    net = make_vgg(((3,), (4,)), (5,), 3, (3, 12, 12), seed=seed, dtype=np.float64)
    net.meta["preprocessing"] = TORCHVISION
    for _, layer in net.params():
        layer.b[:] = np.random.default_rng(seed).standard_normal(layer.b.shape) * 0.1
    return net


def test_one_feature_visualization_step_is_the_gradient_of_its_objective(rng):
    net, param = tiny_net(), FourierParam()
    params = param.init(2, 12, rng).astype(np.float64)
    transforms = standard_transforms(12)
    objective = (objectives.channel("conv2_1", [1, 2]) - 0.5 * objectives.diversity("conv1_1")
                 - 0.01 * objectives.l2())

    def step(p):                                     # the same random draws every time
        return ascent_gradient(net, objective, param, p, transforms, np.random.default_rng(11))

    score, grad, _ = step(params)
    assert grad.shape == params.shape and np.abs(grad).max() > 0
    num = numerical_gradient(lambda p: step(p)[0], params, np.ones(2))
    assert rel_error(grad, num) < TOL


def _score(net, targets):
    return lambda x: target_scores(net, x, targets)


def test_vanilla_is_the_gradient_of_the_class_score_and_of_a_unit(rng):
    net = tiny_net()
    pixels = rng.uniform(0, 1, (2, 3, 12, 12))
    for targets in ([0, 2], [Unit("conv2_1", 1), Unit("conv2_1", 1)], [Unit("relu1_1", 2, 3, 4)] * 2):
        r = S.vanilla(net, pixels, targets)
        num = numerical_gradient(_score(net, targets), pixels, np.ones(2))
        assert rel_error(r.attribution, num) < TOL, targets
        assert np.allclose(r.saliency, np.abs(num).max(axis=1), atol=1e-9)


def test_smoothgrad_is_the_mean_gradient_at_the_noisy_copies(rng):
    net = tiny_net()
    pixels = rng.uniform(0, 1, (1, 3, 12, 12))
    noise = rng.standard_normal((3, 3, 12, 12)) * 0.1
    r = S.smoothgrad(net, pixels, [1], noise_tensor=noise, batch=2)
    expected = np.mean([numerical_gradient(_score(net, [1]), pixels + eps, np.ones(1))[0] for eps in noise], axis=0)
    assert rel_error(r.attribution[0], expected) < TOL


def test_integrated_gradients_are_the_path_integral_of_the_gradient(rng):
    net = tiny_net()
    pixels = rng.uniform(0, 1, (1, 3, 12, 12))
    base = rng.uniform(0, 1, (3, 12, 12))       # not flat grey: a flat image ties the max-pools
    steps = 4
    r = S.integrated(net, pixels, [2], steps=steps, baseline=base)
    alphas = (np.arange(steps) + 0.5) / steps
    grads = [numerical_gradient(_score(net, [2]), (base + a * (pixels[0] - base))[None], np.ones(1))[0]
             for a in alphas]
    assert rel_error(r.attribution[0], (pixels[0] - base) * np.mean(grads, axis=0)) < TOL


def test_gradcam_weights_are_the_mean_gradient_of_the_score_at_its_layer(rng):
    net = tiny_net()
    pixels = rng.uniform(0, 1, (2, 3, 12, 12))
    targets = [0, 2]
    layer = "conv2_1"       # before the ReLU: its zeros would tie the max-pool, where no derivative is
    r = S.gradcam(net, pixels, targets, layer=layer)
    acts = net.forward(pixels, until=layer)
    head = Network(net.layers[net.position(layer) + 1:])          # the rest of the network
    rows = np.arange(2)
    d_acts = numerical_gradient(lambda a: head.forward(a)[rows, targets], acts, np.ones(2))
    signed = (d_acts.mean(axis=(2, 3))[:, :, None, None] * acts).sum(axis=1)
    assert rel_error(r.cam_signed, signed) < TOL
    assert rel_error(r.cam, np.maximum(signed, 0)) < TOL
