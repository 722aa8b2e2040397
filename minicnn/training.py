"""Training a built-in model from scratch with minicnn's backprop (``python -m minicnn.train``).

A VGG-style network learns to classify the images of its procedural world (``minicnn.world``:
objects made of parts, 64x64, 10 classes; or ``minicnn.shapes``: 32x32 shapes, 8 classes) with
minibatch Adam and softmax cross-entropy. Nothing but the code in this package: forward,
backward, the optimizer, the data. The defaults are the recipe of the shipped weights
(``minicnn.models``). A seed fixes every bit of a run for one version of this code, one
number of workers and one machine; the shipped files were made by earlier versions, which
added the same numbers in other orders (weights/README.md says which), so a retrain today
differs from them in its digits and matches them in accuracy.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from . import layers as L
from .fast.cpu import COLS_BLOCK, CPU
from .backend import to_device, to_numpy
from .models import build
from .optim import Adam


def shapes_network(seed=0):
    """The shapes model's architecture, He-initialised: 32x32 RGB in, 8 class logits out."""
    return build("shapes", seed)


def evaluate(net, images, labels, batch=256):
    """Accuracy (fraction correct) of ``net`` on RGB images in [0, 1]."""
    correct = 0
    for i in range(0, len(images), batch):
        x = to_device(images[i:i + batch], net.device)
        correct += int((to_numpy(net.forward(x)).argmax(axis=1) == labels[i:i + batch]).sum())
    return correct / len(images)


def _cores():
    try:
        return len(os.sched_getaffinity(0))     # the cores this process may use (Linux)
    except AttributeError:
        return os.cpu_count() or 1


class BatchGradients:
    """Softmax cross-entropy on a batch: its loss, its logits and every parameter's gradient,
    with the batch split among ``workers`` threads.

        with BatchGradients(net, workers=2) as gradients:
            loss, logits, grads = gradients(x, y)    # grads: (dw, db) per conv/linear layer

    Each worker runs forward and backward on its share of the images as a pass of its own
    (the same network, its own tape and engine). The loss is a mean over images,
    so each share's gradient is weighted by its share of the batch, and the shares' gradients
    are added in a fixed order. One worker is the plain single pass, bit for bit.

    Why threads help: NumPy lets go of Python's lock inside its loops and matrix products, so
    two workers run on two cores at once. A single pass uses both cores only inside BLAS's
    products; the copies around them (im2col, padding, pooling, ReLU) run on one. The cores are
    shared out: on 2 cores each worker's products get one BLAS thread (threadpoolctl), so the
    two workers do not also split every product between them and fight over the cores; on 16,
    8 each. So are the caches: each worker builds its im2col columns in blocks of
    ``COLS_BLOCK / workers`` values (its own engine, ``fast.cpu.CPU(cols_block=...)``; measured on the world model's
    step, 2 cores: 1.08-1.23 times torch's time in three runs, against 1.19-1.36 with whole
    blocks). BLAS's thread count changes the last digits of a product, so the bits of a run
    depend on ``workers`` and on the machine, never on which thread finishes first.
    """

    def __init__(self, net, workers=2):
        self.workers = 1 if net.device != "cpu" else max(1, int(workers))  # a GPU is one device
        self.net = net
        # each worker runs its passes on an engine of its own, with its part of the caches
        self.engines = [net.engine] if self.workers == 1 else [
            CPU(cols_block=COLS_BLOCK // self.workers) for _ in range(self.workers)]
        self.pool = self.limit = None
        if self.workers > 1:
            try:
                from threadpoolctl import ThreadpoolController
                self.limit = ThreadpoolController()
                self.pool = ThreadPoolExecutor(self.workers)
                self.blas_threads = max(1, _cores() // self.workers)   # 1 each on 2 cores
            except ImportError:   # installed with minicnn; without it the shares run one after
                pass              # another (no faster; BLAS's own threads change the last digits)

    def __call__(self, x, y):
        shares = [s for s in np.array_split(np.arange(len(x)), self.workers) if len(s)]
        if len(shares) == 1:
            return self._share(self.engines[0], x, y, 1.0)
        jobs = [(engine, x[s[0]:s[-1] + 1], y[s[0]:s[-1] + 1], len(s) / len(x))
                for engine, s in zip(self.engines, shares)]
        if self.pool is None:
            results = [self._share(*job) for job in jobs]
        else:
            with self.limit.limit(limits=self.blas_threads, user_api="blas"):
                results = list(self.pool.map(lambda job: self._share(*job), jobs))
        loss = sum(r[0] for r in results)
        logits = np.concatenate([r[1] for r in results])
        grads = results[0][2]
        for _, _, more in results[1:]:
            grads = [(dw + dw2, db + db2) for (dw, db), (dw2, db2) in zip(grads, more)]
        return loss, logits, grads

    def _share(self, engine, x, y, weight):
        """Forward and backward on one share; its loss and gradients weighted by its share."""
        p = self.net.run(x, engine=engine)
        loss, dlogits = L.softmax_cross_entropy(p.output, y)
        if weight != 1.0:
            dlogits *= weight
        grads = {}
        p.backward(dlogits, grads=grads, input_grad=False)    # d loss / d image is not needed
        return float(loss) * weight, p.output, [grads[name] for name, _ in self.net.params()]

    def close(self):
        if self.pool:
            self.pool.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def train(net, images, labels, epochs=6, batch=64, lr=4e-3, seed=0, quiet=False, log=None,
          weight_decay=0.05, after_epoch=None, workers=2):
    """Minibatch Adam on softmax cross-entropy; the learning rate follows a cosine from lr to 0.
    A little weight decay keeps the filters smooth, which also makes input gradients cleaner.
    ``after_epoch(epoch, net)``, if given, is called after each epoch (to watch features emerge).
    ``workers`` threads share each batch (``BatchGradients``; on a GPU, one).

    Returns the per-epoch history (mean loss and training accuracy). Deterministic for a seed,
    a number of workers and a machine.
    """
    device = net.device
    rng = np.random.default_rng(seed)
    net.unfreeze()                 # training changes the weights (a loaded network comes frozen)
    params = [p for _, layer in net.params() for p in (layer.w, layer.b)]
    opt = Adam(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(images) // batch
    total = epochs * steps_per_epoch
    history = []
    step = 0
    with BatchGradients(net, workers) as gradients:
        for epoch in range(epochs):
            order = rng.permutation(len(images))
            losses, correct = [], 0
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", disable=quiet,
                       leave=False, file=sys.stderr)
            for k in bar:
                idx = order[k * batch:(k + 1) * batch]
                x = to_device(images[idx], device)
                y = to_device(labels[idx], device)
                loss, logits, grads = gradients(x, y)
                opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total))   # cosine decay
                opt.step([g for pair in grads for g in pair])
                step += 1
                losses.append(loss)
                correct += int((to_numpy(logits).argmax(axis=1) == labels[idx]).sum())
                if k % 20 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", acc=f"{correct / ((k + 1) * batch):.3f}")
            history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                            "train_accuracy": correct / (steps_per_epoch * batch)})
            if log:
                log(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f}, "
                    f"train accuracy {history[-1]['train_accuracy']:.4f}")
            if after_epoch:
                after_epoch(epoch + 1, net)
    return history
