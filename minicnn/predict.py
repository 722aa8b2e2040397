"""``python -m minicnn.predict IMG [IMG ...]``: the model's top classes for each image.

    python -m minicnn.predict examples/*.png               # the shipped world model
    python -m minicnn.predict photo.jpg --model vgg19 --top 5
"""
import json

import numpy as np

from .classify import classify, top_k
from .cli import (ArgumentParser, add_model_options, int_range, load_model_from_args, main_wrapper, note_model,
                  print_top)
from .images import load_image


@main_wrapper
def main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.predict", description=__doc__)
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files (any format Pillow reads)")
    add_model_options(parser)
    parser.add_argument("--top", type=int_range(1, 1000), default=5, help="how many classes to print (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead")
    args = parser.parse_args(argv)
    net = load_model_from_args(args)
    size = net.input_shape[1]
    pixels = np.stack([load_image(path, size) for path in args.images])  # all checked first
    logits = classify(net, pixels)
    note_model(net, args.images, quiet=args.quiet)
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
