"""Frozen networks: read-only weights, whose Winograd filter transforms are kept from their
second use (Network.freeze, fast.winograd.kept_filter_transform, Layer.kept); loading freezes,
training unfreezes."""
import gc
import weakref

import numpy as np
import pytest

from minicnn.fast import winograd
from minicnn.vgg19 import make_vgg


def wide_net(seed=0):
    """Two 3x3 convs of 64 channels on 8x8 maps: F(4x4) by the rule, forward and backward."""
    return make_vgg(((64, 64),), (), 4, (64, 8, 8), seed=seed)


def saliency(net, x):
    p = net.run(x)
    return p.backward(np.ones_like(p.output))


@pytest.fixture
def transforms(monkeypatch):
    """Counts the filter transforms actually computed."""
    made = []
    plain = winograd.filter_transform

    def counted(w, m, flipped=False):
        made.append((w.shape, m, flipped))
        return plain(w, m, flipped)
    monkeypatch.setattr(winograd, "filter_transform", counted)
    return made


def test_a_frozen_network_keeps_its_transforms_from_their_second_use_and_answers_the_same(transforms):
    x = np.random.default_rng(1).standard_normal((1, 64, 8, 8), dtype=np.float32)
    plain, frozen = wide_net(), wide_net().freeze()
    expected = saliency(plain, x)
    assert len(transforms) == 4                  # 2 layers x (forward, backward's flipped)
    for run in range(4):
        transforms.clear()
        assert np.array_equal(saliency(frozen, x), expected)
        assert len(transforms) == (4 if run < 2 else 0)      # made twice (kept the second time), then read
    transforms.clear()
    saliency(plain, x)
    assert len(transforms) == 4                  # writable weights: every pass


def test_a_pass_of_its_own_holds_no_transform(transforms):
    """One pass (one saliency map) never reads its transforms again: none is held after it,
    so VGG19's 473 MB of them are not added to a one-shot job's memory."""
    net = wide_net().freeze()
    saliency(net, np.ones((1, 64, 8, 8), dtype=np.float32))
    assert len(transforms) == 4
    assert all(u is None for layer in net.layers if layer.kind == "conv" for u in layer.kept.values())
    net.forward(np.ones((1, 64, 8, 8), dtype=np.float32))          # the second forward: kept now
    assert all(isinstance(layer.kept[(4, False)], np.ndarray) and layer.kept[(4, True)] is None
               for layer in net.layers if layer.kind == "conv")


def test_a_batch_keeps_no_transform_but_reads_a_kept_one(transforms):
    """Calls on more than KEEP_IMAGES images (SmoothGrad's copies) keep nothing, however often
    they come, and count no use; they read what a call on one image kept."""
    net = wide_net().freeze()
    batch = np.random.default_rng(1).standard_normal((winograd.KEEP_IMAGES + 1, 64, 8, 8), dtype=np.float32)
    expected = saliency(wide_net(), batch)
    for _ in range(3):
        assert np.array_equal(saliency(net, batch), expected)
    assert len(transforms) == 4 * 4 and not any(layer.kept for layer in net.layers if layer.kind == "conv")
    for _ in range(2):
        saliency(net, batch[:1])
    transforms.clear()
    assert np.array_equal(saliency(net, batch), expected)
    assert transforms == []


def test_frozen_weights_are_read_only_and_unfreeze_forgets_their_transforms(transforms):
    x = np.random.default_rng(1).standard_normal((1, 64, 8, 8), dtype=np.float32)
    net = wide_net().freeze()
    saliency(net, x)
    with pytest.raises(ValueError, match="read-only"):
        net.layer("conv1_2").w[0] = 0
    net.unfreeze()
    net.layer("conv1_2").w *= -0.5               # changed in place: the same array
    net.freeze()
    changed = wide_net()
    changed.layer("conv1_2").w *= -0.5
    assert np.array_equal(saliency(net, x), saliency(changed, x))


def test_freeze_copies_a_weight_that_views_writable_memory():
    net = wide_net()
    store = net.layer("conv1_1").w.copy()
    net.layer("conv1_1").w = store[:]             # a view of memory someone else can write
    net.freeze()
    store[...] = 0
    assert np.array_equal(net.layer("conv1_1").w, wide_net().layer("conv1_1").w)


def test_the_layer_owns_its_transforms_and_lets_them_go(transforms):
    """The transforms live in the frozen layer (``Layer.kept``), not in a process-wide table:
    new weights drop them, and they are freed with the network."""
    x = np.random.default_rng(1).standard_normal((1, 64, 8, 8), dtype=np.float32)
    net = wide_net().freeze()
    saliency(net, x)
    saliency(net, x)                                      # the second use keeps them
    layer = net.layer("conv1_2")
    assert sorted(layer.kept) == [(4, False), (4, True)]
    alive = weakref.ref(layer.kept[(4, False)])
    layer.w = np.ascontiguousarray(layer.w[::-1])         # new weights (writable): nothing kept
    assert layer.kept is None and alive() is None
    transforms.clear()
    saliency(net, x)
    assert len(transforms) == 2                           # conv1_1 kept its two; conv1_2 made anew
    first = weakref.ref(net.layer("conv1_1").kept[(4, False)])
    del net, layer
    gc.collect()
    assert first() is None


def test_unfreeze_drops_what_was_kept():
    net = wide_net().freeze()
    for _ in range(2):
        saliency(net, np.ones((1, 64, 8, 8), dtype=np.float32))
    assert all(layer.kept for layer in net.layers if layer.kind == "conv")
    net.unfreeze()
    assert all(layer.kept is None for layer in net.layers)


def test_loaded_networks_come_frozen_and_train_unfreezes(tmp_path):
    from minicnn.training import train
    from minicnn.weights import save_network, load_network
    from minicnn.models import build, dataset
    path = str(tmp_path / "net.h5")
    built = build("shapes", seed=0)
    save_network(built, path, "test", built.meta["preprocessing"], built.class_names)
    net = load_network(path)
    assert net.frozen and not any(a.flags.writeable for _, layer in net.params() for a in (layer.w, layer.b))
    assert net.to("cpu").frozen
    before = net.layer("conv1_1").w.copy()
    images, labels = dataset("shapes").make_dataset(64, seed=1)[:2]
    train(net, images, labels, epochs=1, batch=64, quiet=True, workers=1)
    assert not net.frozen and not np.array_equal(net.layer("conv1_1").w, before)
