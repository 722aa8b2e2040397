"""Training a built-in model from scratch with minicnn's backprop (``python -m minicnn.train``).

A VGG-style network learns to classify the images of its procedural world (``minicnn.world``:
objects made of parts, 64x64, 10 classes; or ``minicnn.shapes``: 32x32 shapes, 8 classes) with
minibatch Adam and softmax cross-entropy. Nothing but the code in this package: forward,
backward, the optimizer, the data. The defaults are the recipe of the shipped weights
(``minicnn.models``), so the command below reproduces them bit for bit.
"""
import sys

import numpy as np
from tqdm import tqdm

from . import layers as L
from .backend import to_device, to_numpy
from .models import build
from .optim import Adam
from .preprocess import preprocess


def shapes_network(seed=0):
    """The shapes model's architecture, He-initialised: 32x32 RGB in, 8 class logits out."""
    return build("shapes", seed)


def evaluate(net, images, labels, batch=256):
    """Accuracy (fraction correct) of ``net`` on RGB images in [0, 1]."""
    xp_device = net.device
    prep = net.meta["preprocessing"]
    correct = 0
    for i in range(0, len(images), batch):
        x = to_device(preprocess(images[i:i + batch], prep), xp_device)
        correct += int((to_numpy(net.forward(x, record=False)).argmax(axis=1) == labels[i:i + batch]).sum())
    return correct / len(images)


def train(net, images, labels, epochs=6, batch=64, lr=4e-3, seed=0, quiet=False, log=None,
          weight_decay=0.05, after_epoch=None):
    """Minibatch Adam on softmax cross-entropy; the learning rate follows a cosine from lr to 0.
    A little weight decay keeps the filters smooth, which also makes input gradients cleaner.
    ``after_epoch(epoch, net)``, if given, is called after each epoch (to watch features emerge).

    Returns the per-epoch history (mean loss and training accuracy). Deterministic for a seed.
    """
    device = net.device
    prep = net.meta["preprocessing"]
    rng = np.random.default_rng(seed)
    params = [p for _, layer in net.params() for p in (layer.w, layer.b)]
    opt = Adam(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(images) // batch
    total = epochs * steps_per_epoch
    history = []
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        losses, correct = [], 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", disable=quiet,
                   leave=False, file=sys.stderr)
        for k in bar:
            idx = order[k * batch:(k + 1) * batch]
            x = to_device(preprocess(images[idx], prep), device)
            y = to_device(labels[idx], device)
            logits = net.forward(x)
            loss, dlogits = L.softmax_cross_entropy(logits, y)
            grads = {}
            net.backward(dlogits, grads=grads, input_grad=False)  # d loss / d image is not needed
            opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / total))   # cosine decay
            opt.step([g for name, _ in net.params() for g in grads[name]])
            step += 1
            losses.append(float(loss))
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
