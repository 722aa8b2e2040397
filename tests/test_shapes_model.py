"""The procedural dataset, training, and the shipped shapes model on data it never saw."""
import numpy as np
import pytest

from minicnn import layers as L
from minicnn.shapes import CLASSES, make_dataset
from minicnn.training import evaluate, shapes_network, train
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
    def loss_of(net):
        return float(L.softmax_cross_entropy(net.forward(images), labels)[0])

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


# Vanilla saliency (max over channels of |d logit / d pixel|) on unseen images: the fraction of
# its total mass that falls on the object, taken as the object's mask grown by 2 pixels. Why
# grown: the first two 3x3 convolutions see 5x5 windows, so the units that detect an outline
# respond to pixels up to 2 px on either side of it, and an outline is what makes a star a star.
# The grown masks cover about 29% of each image (a map that ignored the object would score
# about 0.29). Measured on the shipped model: about 0.6 (printed with -s). Required: 0.5, i.e.
# most of the mass, and at least 1.7x what an object-blind map would give.
SALIENCY_IN_MASK_MIN = 0.5
GROW_PX = 2


def grow(masks, px):
    """Dilate boolean masks (N, H, W) by ``px`` pixels (4-neighbourhood, repeated)."""
    for _ in range(px):
        g = masks.copy()
        g[:, 1:] |= masks[:, :-1]
        g[:, :-1] |= masks[:, 1:]
        g[:, :, 1:] |= masks[:, :, :-1]
        g[:, :, :-1] |= masks[:, :, 1:]
        masks = g
    return masks


def test_shipped_model_saliency_falls_on_the_object(shipped, unseen):
    from minicnn.saliency import vanilla
    images, labels, masks = unseen
    images, labels, masks = images[:400], labels[:400], masks[:400]
    saliency = vanilla(shipped, images, labels).saliency
    fraction = {px: ((saliency * grow(masks, px)).sum(axis=(1, 2)) / saliency.sum(axis=(1, 2))).mean()
                for px in (0, GROW_PX)}
    area = grow(masks, GROW_PX).mean()
    print(f"\nsaliency mass on the object: {fraction[0]:.3f} inside the mask (area {masks.mean():.3f}), "
          f"{fraction[GROW_PX]:.3f} inside the mask grown by {GROW_PX} px (area {area:.3f})")
    assert fraction[GROW_PX] >= SALIENCY_IN_MASK_MIN
    assert fraction[GROW_PX] >= 1.7 * area
    assert fraction[0] >= 1.7 * masks.mean()
