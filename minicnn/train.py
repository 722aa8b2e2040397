"""``python -m minicnn.train``: train the small shapes model from scratch with minicnn's backprop.

A VGG-style network (three conv blocks, a hidden linear layer, 8 classes) learns to classify
the procedural shapes of ``minicnn.shapes``, with minibatch Adam and softmax cross-entropy.
Nothing but the code in this package: forward, backward, the optimizer, the data.

    python -m minicnn.train                      # the shipped model: writes weights/shapes.h5
    python -m minicnn.train --epochs 1 --train-size 2000 --out /tmp/quick.h5
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from tqdm import tqdm

from . import layers as L
from .backend import DeviceError, check_device, to_device, to_numpy
from .optim import Adam
from .preprocess import SHAPES, preprocess
from .shapes import CLASSES, SIZE, make_dataset
from .vgg19 import make_vgg

BLOCKS = ((16, 16), (32, 32), (64,))   # conv channels per block; each block ends in a 2x2 max-pool
FC = (64,)                             # hidden linear layer(s)


def shapes_network(seed=0):
    """The shapes model's architecture, He-initialised: 32x32 RGB in, 8 class logits out."""
    net = make_vgg(BLOCKS, FC, len(CLASSES), (3, SIZE, SIZE), seed=seed)
    net.class_names = list(CLASSES)
    net.meta.update(architecture="custom", preprocessing=SHAPES)
    return net


def evaluate(net, images, labels, batch=256):
    """Accuracy (fraction correct) of ``net`` on RGB images in [0, 1]."""
    xp_device = net.device
    correct = 0
    for i in range(0, len(images), batch):
        x = to_device(preprocess(images[i:i + batch], SHAPES), xp_device)
        correct += int((to_numpy(net.forward(x)).argmax(axis=1) == labels[i:i + batch]).sum())
    return correct / len(images)


def train(net, images, labels, epochs=6, batch=64, lr=4e-3, seed=0, quiet=False, log=None,
          weight_decay=0.05, after_epoch=None):
    """Minibatch Adam on softmax cross-entropy; the learning rate follows a cosine from lr to 0.
    A little weight decay keeps the filters smooth, which also makes input gradients cleaner.
    ``after_epoch(epoch, net)``, if given, is called after each epoch (to watch features emerge).

    Returns the per-epoch history (mean loss and training accuracy). Deterministic for a seed.
    """
    device = net.device
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
            x = to_device(preprocess(images[idx], SHAPES), device)
            y = to_device(labels[idx], device)
            logits = net.forward(x)
            loss, dlogits = L.softmax_cross_entropy(logits, y)
            grads = {}
            net.backward(dlogits, grads=grads)
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


def default_output():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(here, "weights", "shapes.h5")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.train", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-size", type=int, default=24000, help="training images (default 24000)")
    parser.add_argument("--val-size", type=int, default=2000, help="held-out images (default 2000)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-3, help="Adam's initial learning rate (default 4e-3)")
    parser.add_argument("--weight-decay", type=float, default=0.05,
                        help="decoupled weight decay, relative to lr (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", default=None, help="weight file to write (default weights/shapes.h5)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    out = args.out or default_output()
    quiet = args.quiet or not sys.stderr.isatty()

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr)

    for name in ("epochs", "train_size", "val_size", "batch"):
        if getattr(args, name) < 1:
            sys.exit(f"error: --{name.replace('_', '-')} must be at least 1")
    if args.lr <= 0:
        sys.exit("error: --lr must be positive")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        sys.exit(f"error: cannot write {out}: {out_dir} is not a writable folder")
    try:
        check_device(args.device)
    except DeviceError as e:
        sys.exit(f"error: {e}")

    t0 = time.time()
    log(f"making {args.train_size} training and {args.val_size} held-out images ...")
    train_images, train_labels, _ = make_dataset(args.train_size, seed=1000 * args.seed + 1)
    val_images, val_labels, _ = make_dataset(args.val_size, seed=1000 * args.seed + 2)
    net = shapes_network(seed=args.seed).to(args.device)
    history = train(net, train_images, train_labels, epochs=args.epochs, batch=args.batch,
                    lr=args.lr, seed=args.seed, quiet=quiet, log=log, weight_decay=args.weight_decay)
    accuracy = evaluate(net, val_images, val_labels)
    seconds = time.time() - t0
    log(f"held-out accuracy {accuracy:.4f} on {args.val_size} images; {seconds:.0f} s in all")

    from .weights import save_network
    command = "python -m minicnn.train " + " ".join(argv if argv is not None else sys.argv[1:])
    save_network(net, out, source=f"minicnn.train (trained from scratch): {command.strip()}",
                 preprocessing=SHAPES, class_names=list(CLASSES))
    record = {"command": command.strip(), "held_out_accuracy": accuracy, "held_out_images": args.val_size,
              "seconds": round(seconds, 1), "history": history,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.device}",
              "numpy": np.__version__}
    with open(os.path.splitext(out)[0] + "-training.json", "w") as f:
        json.dump(record, f, indent=1)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
