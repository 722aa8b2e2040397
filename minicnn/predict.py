"""``python -m minicnn.predict IMG [IMG ...]``: the model's top classes for each image.

    python -m minicnn.predict examples/*.png               # the shipped shapes model
    python -m minicnn.predict photo.jpg --model vgg19 --top 5
"""
import argparse
import json

import numpy as np

from .backend import to_device, to_numpy
from .cli import add_model_options, load_model_from_args, main_wrapper
from .images import load_image
from .preprocess import preprocess


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def classify(net, pixels, batch=32):
    """Class logits for RGB pixels (N, 3, H, W) in [0, 1], batched; returns numpy (N, K)."""
    from .weights import require_classifier
    require_classifier(net)
    prep = net.meta["preprocessing"]
    out = []
    for i in range(0, len(pixels), batch):
        x = to_device(preprocess(pixels[i:i + batch], prep), net.device)
        out.append(to_numpy(net.forward(x)))
    return np.concatenate(out)


def top_k(net, logits, k):
    """[(class index, class name, probability), ...] for the k most probable classes."""
    p = softmax(logits)
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(c), net.class_names[c], float(p[c])) for c in order]


def print_top(image, top):
    """The image's name, then one line per class: probability, name (index)."""
    print(image)
    for t in top:
        print(f"  {t['probability']:6.1%}  {t['name']} ({t['class']})")


@main_wrapper
def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.predict", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMG")
    add_model_options(parser)
    parser.add_argument("--top", type=int, default=5, help="how many classes to print (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args(argv)
    net = load_model_from_args(args)
    size = net.input_shape[1]
    pixels = np.stack([load_image(path, size) for path in args.images])  # all checked first
    logits = classify(net, pixels)
    results = [{"image": path, "top": [{"class": c, "name": n, "probability": p}
                                       for c, n, p in top_k(net, row, max(1, args.top))]}
               for path, row in zip(args.images, logits)]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print_top(r["image"], r["top"])


if __name__ == "__main__":
    main()
