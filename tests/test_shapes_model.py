"""The procedural dataset, training, and the shipped shapes model on data it never saw."""
import numpy as np
import pytest

from minicnn import layers as L
from minicnn.preprocess import SHAPES, preprocess, preprocess_backward
from minicnn.shapes import CLASSES, make_dataset
from minicnn.train import evaluate, shapes_network, train
from minicnn.weights import load_model

UNSEEN_SEED = 987654  # training uses seeds 1 and 2 (train / held-out); this set is new


def test_dataset_is_deterministic_and_balanced():
    a, la, ma = make_dataset(40, seed=3)
    b, lb, mb = make_dataset(40, seed=3)
    c, _, _ = make_dataset(40, seed=4)
    assert np.array_equal(a, b) and np.array_equal(la, lb) and np.array_equal(ma, mb)
    assert not np.array_equal(a, c)
    assert np.bincount(la, minlength=len(CLASSES)).tolist() == [5] * len(CLASSES)
    assert a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1


def test_masks_cover_the_object():
    """The mask marks the object's pixels: they share one colour, unlike the background."""
    images, labels, masks = make_dataset(64, seed=5)
    for img, mask in zip(images, masks):
        assert 20 < mask.sum() < 0.6 * mask.size
        inside = img[:, mask]
        outside = img[:, ~mask]
        # object pixels are one flat colour (+ anti-aliasing at the rim); the rest is textured
        assert np.median(np.abs(inside - np.median(inside, axis=1, keepdims=True))) < 0.02
        assert np.abs(np.median(inside, axis=1) - np.median(outside, axis=1)).mean() > 0.1


def test_circle_and_ring_geometry():
    """A ring has a hole: its centre pixel is background, a circle's is object."""
    from minicnn.shapes import shape_mask
    rng = np.random.default_rng(0)
    u, v = np.meshgrid(np.linspace(-10, 10, 41), np.linspace(-10, 10, 41))
    assert shape_mask("circle", u, v, 8.0, rng)[20, 20]
    ring = shape_mask("ring", u, v, 8.0, rng)
    assert not ring[20, 20] and ring[20, 20 + 15]   # centre empty, (7.5, 0) inside the band
    with pytest.raises(ValueError, match="circle, ring"):
        shape_mask("hexagon", u, v, 8.0, rng)


def test_short_training_lowers_the_loss_and_is_reproducible():
    images, labels, _ = make_dataset(256, seed=6)
    x = preprocess(images, SHAPES)

    def loss_of(net):
        return float(L.softmax_cross_entropy(net.forward(x), labels)[0])

    net = shapes_network(seed=1)
    before = loss_of(net)
    history = train(net, images, labels, epochs=3, batch=32, lr=2e-3, seed=1, quiet=True)
    after = loss_of(net)
    assert after < 0.8 * before, (before, after)
    assert history[-1]["loss"] < history[0]["loss"]

    again = shapes_network(seed=1)
    train(again, images, labels, epochs=3, batch=32, lr=2e-3, seed=1, quiet=True)
    for (_, a), (_, b) in zip(net.params(), again.params()):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b)   # same seed, same bits


@pytest.fixture(scope="module")
def shipped():
    return load_model("shapes")


@pytest.fixture(scope="module")
def unseen():
    return make_dataset(800, seed=UNSEEN_SEED)


def test_shipped_model_accuracy_on_unseen_data(shipped, unseen):
    images, labels, _ = unseen
    accuracy = evaluate(shipped, images, labels)
    assert accuracy >= 0.95, accuracy


# Vanilla saliency (max over channels of |d logit / d pixel|) on the unseen set: the fraction
# of its total mass inside the object's mask, averaged over images. The masks cover about 16%
# of each image, so a map that ignored the object would score about 0.16. Measured on the
# shipped model: see the note printed with -s; required: at least 0.5.
SALIENCY_IN_MASK_MIN = 0.5


def test_shipped_model_saliency_falls_on_the_object(shipped, unseen):
    images, labels, masks = unseen
    images, labels, masks = images[:200], labels[:200], masks[:200]
    logits = shipped.forward(preprocess(images, SHAPES))
    dlogits = np.zeros_like(logits)
    dlogits[np.arange(len(labels)), labels] = 1.0
    grad = preprocess_backward(shipped.backward(dlogits), SHAPES)   # (N, 3, H, W), pixel space
    saliency = np.abs(grad).max(axis=1)
    # grow each mask by one pixel: the gradient lives on the object's edges, half of which
    # fall on the background side of the anti-aliased rim
    grown = masks.copy()
    grown[:, 1:] |= masks[:, :-1]
    grown[:, :-1] |= masks[:, 1:]
    grown[:, :, 1:] |= masks[:, :, :-1]
    grown[:, :, :-1] |= masks[:, :, 1:]
    fraction = (saliency * grown).sum(axis=(1, 2)) / saliency.sum(axis=(1, 2))
    print(f"\nsaliency mass inside the (1-px grown) mask: mean {fraction.mean():.3f}, "
          f"grown masks cover {grown.mean():.3f} of the pixels")
    assert fraction.mean() >= SALIENCY_IN_MASK_MIN
    assert fraction.mean() > 2 * grown.mean()
