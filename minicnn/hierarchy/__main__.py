"""``python -m minicnn.hierarchy``: what do the units of each layer detect? Measured, not asserted.

    python -m minicnn.hierarchy                     # the world model, 1000 held-out images
    python -m minicnn.hierarchy --model shapes --no-figure
    python -m minicnn.hierarchy --model vgg16-hed   # a real network: edge/colour, curve, texture only
"""
import json
import os

from ..cli import ArgumentParser, UsageError, add_model_options, add_seed_option, int_range, check_outdir, load_model_from_args, main_wrapper
from ..curves import NULL_COPIES
from .rule import LABELS
from .units import run


def _main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.hierarchy", description=__doc__)
    add_model_options(parser)
    parser.add_argument("--images", type=int_range(10, 20000), default=1000,
                        help="held-out images of the model's world (default 1000, balanced)")
    add_seed_option(parser, help="probes, held-out images and the random copy")
    parser.add_argument("--null-copies", type=int_range(0, 16), default=NULL_COPIES,
                        help=f"random copies for each layer's curve score null (default {NULL_COPIES})")
    parser.add_argument("--vis-steps", type=int_range(1, 4096), default=128, help="feature-visualization steps (default 128)")
    parser.add_argument("--outdir", default=".", help="where hierarchy.png goes (default .)")
    parser.add_argument("--no-figure", action="store_true", help="numbers only")
    parser.add_argument("--json", action="store_true", help="print every layer's numbers as JSON")
    args = parser.parse_args(argv)
    check_outdir(args.outdir)
    net = load_model_from_args(args)
    try:
        result = run(net, args.images, args.seed, args.null_copies, args.vis_steps,
                     None if args.no_figure else os.path.join(args.outdir, "hierarchy.png"))
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{'layer':9s} {'':8s} " + " ".join(f"{name:>11s}" for name in LABELS))
    for entry in result["layers"]:
        for which in ("trained", "random"):
            print(f"{entry['layer'] if which == 'trained' else '':9s} {which:8s} "
                  + " ".join(f"{entry[which][name]:11.0%}" for name in LABELS))
    for part, found in result["named_parts"].items():
        if found.get("layer"):
            shares = ", ".join(f"{c} {v:.0%}" for c, v in found["per_class"].items())
            print(f"{part}: {found['layer']}:{found['channel']} peaks on the {part} in {shares}"
                  f" -> {'named detector' if found['named'] else 'not localized enough'}")
        else:
            print(f"{part}: no channel labelled part prefers it")
    if "figure" in result:
        print(f"wrote {result['figure']}")
    if "note" in result:
        print(f"note: {result['note']}")


main = main_wrapper(_main)


if __name__ == "__main__":
    main()
