"""A training step against PyTorch: the loss and every parameter gradient of softmax
cross-entropy on a batch, whether one pass or several threads share the batch."""
import os

import numpy as np
import pytest

from fixtures import golden_network
from minicnn.gradcheck import rel_error
from minicnn.training import BatchGradients

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def golden():
    return np.load(os.path.join(DATA, "golden_vgg.npz")), np.load(os.path.join(DATA, "golden_train.npz"))


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_batch_gradients_match_torch_however_the_batch_is_shared(golden, workers):
    """7 images: one pass, shares of 4 + 3, 3 + 2 + 2, and more workers than images (7 of 1)."""
    g, t = golden
    net = golden_network(g, np.float32)
    with BatchGradients(net, workers) as gradients:
        loss, logits, grads = gradients(t["input"], t["labels"])
        again = gradients(t["input"], t["labels"])
    assert abs(loss - float(t["loss"])) < 1e-5 * abs(float(t["loss"]))
    assert rel_error(logits, net.forward(t["input"])) < 1e-6   # in the batch's order
    for (name, _), (dw, db) in zip(net.params(), grads):
        assert rel_error(dw, t[f"{name}/dw"]) < 1e-4, name
        assert rel_error(db, t[f"{name}/db"]) < 1e-4, name
    gradients.pool = None                                    # without threadpoolctl: the shares
    serial = gradients(t["input"], t["labels"])              # one after another, BLAS on all cores
    for (dw, db), (dw2, db2), (dw3, db3) in zip(grads, again[2], serial[2]):
        assert np.array_equal(dw, dw2) and np.array_equal(db, db2)   # threads finish in any order
        assert rel_error(dw, dw3) < 1e-5 and rel_error(db, db3) < 1e-5   # BLAS's threads: digits


def test_each_worker_builds_its_columns_in_its_part_of_the_block(golden, monkeypatch):
    """Two workers share the caches: each runs on its own engine, whose blocks of columns hold
    COLS_BLOCK / 2 values; the caller's network keeps its whole blocks."""
    from minicnn.fast.cpu import COLS_BLOCK, CPU
    g, t = golden
    net = golden_network(g, np.float32)
    seen, real = [], CPU.blocks
    monkeypatch.setattr(CPU, "blocks", lambda self, *a: seen.append(self.cols_block) or real(self, *a))
    with BatchGradients(net, 2) as gradients:
        gradients(t["input"], t["labels"])
    assert seen and set(seen) == {COLS_BLOCK // 2}
    seen.clear()
    net.forward(t["input"])
    assert seen and set(seen) == {COLS_BLOCK}
