"""``python -m minicnn.train``: train a built-in model from scratch with minicnn's backprop.

A VGG-style network learns to classify the images of its procedural world (``minicnn.world``:
objects made of parts, 64x64, 10 classes; or ``minicnn.shapes``: 32x32 shapes, 8 classes) with
minibatch Adam and softmax cross-entropy. Nothing but the code in this package: forward,
backward, the optimizer, the data. The defaults are the recipe of the shipped weights
(``minicnn.models``); the same command twice gives the same bits (on one machine), but
not the shipped files' bits, which earlier versions of the backward pass made (weights/README.md).

A retrained model is kept in minicnn's cache under a name (default MODEL-retrained), which
every command's ``--model`` then accepts; ``--out FILE`` writes it elsewhere instead (use it
with ``--weights FILE``).

    python -m minicnn.train                           # the world model's recipe: --model world-retrained
    python -m minicnn.train --model shapes --name s2  # the shapes model's recipe: --model s2
    python -m minicnn.train --epochs 1 --train-size 2000 --out /tmp/quick.h5
    python -m minicnn.weights list                    # the retrained models
    python -m minicnn.train --shuffle-labels          # the data randomization twin: --model world-shuffled

``--shuffle-labels`` is the second test of Adebayo et al. 2018: the same architecture trained
on the same images with their labels permuted (seeded), so nothing but memorising the training
set can fit them; its saliency maps are compared with the real model's by
``python -m minicnn.saliency IMG --sanity data``. The held-out accuracy of such a model is
chance; the training accuracy says how well it memorised. Its recipe (``SHUFFLED_RECIPE``):
fewer images, many more epochs, no weight decay.
"""
import json
import os
import platform
import sys
import time

import numpy as np

from .backend import check_device
from .cli import ArgumentParser, UsageError, add_seed_option, check_outdir, float_range, int_range, main_wrapper
from .files import write_text
from .models import DEFAULT, MODELS, build
from .training import evaluate, train
from .weights.cache import trained_path


MEMORY_BOUND = 8 << 30          # bytes a training run's images may take
SHUFFLED_RECIPE = dict(train_size=1000, epochs=80, weight_decay=0.0)   # --shuffle-labels' defaults
DATASET_BYTES_PER_PIXEL = 16    # float32 RGB (12) and the world's part map, with room for the labels


@main_wrapper
def main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.train", description=__doc__)
    parser.add_argument("--model", default=DEFAULT, choices=list(MODELS),
                        help=f"which built-in model (default {DEFAULT}); the other defaults are its recipe")
    parser.add_argument("--epochs", type=int_range(1, 1000), help="passes over the training set")
    parser.add_argument("--train-size", type=int_range(1, 1_000_000), help="training images")
    parser.add_argument("--val-size", type=int_range(1, 1_000_000), default=2000, help="held-out images (default 2000)")
    parser.add_argument("--batch", type=int_range(1, 4096), help="images per step")
    parser.add_argument("--lr", type=float_range(0, 10, low_open=True), help="Adam's initial learning rate")
    parser.add_argument("--weight-decay", type=float_range(0, 100), help="decoupled weight decay, relative to lr")
    parser.add_argument("--workers", type=int_range(1, 64), default=2,
                        help="threads that share each batch (default 2; the last digits of the result depend on "
                             "this number; a GPU always uses one)")
    add_seed_option(parser)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu (default) or cuda (needs cupy and an NVIDIA GPU)")
    parser.add_argument("--name", help="keep the model in minicnn's cache under this name, for --model NAME "
                                       "(default MODEL-retrained)")
    parser.add_argument("--out", default=None, help="write the weight file here instead of the cache "
                                                    "(load it with --weights FILE)")
    parser.add_argument("--shuffle-labels", action="store_true",
                        help="train on permuted labels (Adebayo et al.'s data randomization test; default name "
                             "MODEL-shuffled, and its own recipe: 1000 images, 80 epochs, no weight decay)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    args = parser.parse_args(argv)
    recipe = dict(MODELS[args.model].recipe, **(SHUFFLED_RECIPE if args.shuffle_labels else {}))
    for key, value in recipe.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is not None and args.name is not None:
        raise UsageError("give --name (kept in the cache) or --out (a file), not both")
    if args.name in set(MODELS) | {"vgg19", "vgg16-hed"}:
        raise UsageError(f"--name {args.name}: that is a built-in model's name; choose another")
    if args.out == "":
        raise UsageError("--out '': give a file name")
    default_name = f"{args.model}-{'shuffled' if args.shuffle_labels else 'retrained'}"
    name = args.name if args.name is not None else default_name   # '' is refused, not defaulted
    out = args.out if args.out is not None else trained_path(name)
    size = MODELS[args.model].world.SIZE
    needed = (args.train_size + args.val_size) * DATASET_BYTES_PER_PIXEL * size * size
    if needed > MEMORY_BOUND:
        raise UsageError(f"--train-size {args.train_size} and --val-size {args.val_size} images of {size}x{size} px "
                         f"would take about {needed / 2 ** 30:.0f} GiB in memory, over minicnn's bound of "
                         f"{MEMORY_BOUND >> 30} GiB; use fewer images")
    quiet = args.quiet or not sys.stderr.isatty()

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr)

    if args.train_size < args.batch:
        raise UsageError(f"--train-size {args.train_size} is smaller than one batch ({args.batch})")
    if os.path.lexists(out) and not os.path.isfile(out):
        raise UsageError(f"--out {out}: exists and is not a regular file")
    check_outdir(os.path.dirname(os.path.abspath(out)),
                 "--out: the folder" if args.out is not None else "--name: minicnn's cache folder")
    check_device(args.device)

    t0 = time.time()
    log(f"making {args.train_size} training and {args.val_size} held-out images ...")
    make_dataset = MODELS[args.model].world.make_dataset
    train_images, train_labels, _ = make_dataset(args.train_size, seed=1000 * args.seed + 1)
    val_images, val_labels, _ = make_dataset(args.val_size, seed=1000 * args.seed + 2)
    if args.shuffle_labels:                     # the same images, their labels permuted
        train_labels = np.random.default_rng(1000 * args.seed + 3).permutation(train_labels)
    net = build(args.model, seed=args.seed).to(args.device)
    history = train(net, train_images, train_labels, epochs=args.epochs, batch=args.batch,
                    lr=args.lr, seed=args.seed, quiet=quiet, log=log, weight_decay=args.weight_decay,
                    workers=args.workers)
    accuracy = evaluate(net, val_images, val_labels)
    seconds = time.time() - t0
    log(f"held-out accuracy {accuracy:.4f} on {args.val_size} images; {seconds:.0f} s in all")

    from .weights import save_network
    command = "python -m minicnn.train " + " ".join(argv if argv is not None else sys.argv[1:])
    save_network(net, out, source=f"minicnn.train (trained from scratch): {command.strip()}",
                 preprocessing=net.meta["preprocessing"], class_names=net.class_names)
    record = {"command": command.strip(), "held_out_accuracy": accuracy, "held_out_images": args.val_size,
              "shuffled_labels": bool(args.shuffle_labels),
              "seconds": round(seconds, 1), "history": history,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.device}",
              "numpy": np.__version__}
    write_text(os.path.splitext(out)[0] + "-training.json", json.dumps(record, indent=1))
    log(f"wrote {out}; use it with " + (f"--weights {out}" if args.out else f"--model {name}"))


if __name__ == "__main__":
    main()
