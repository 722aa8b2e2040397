"""``python -m minicnn.shortcut``: a network that cheats, and the saliency maps that catch it.

    python -m minicnn.shortcut                       # ~5 min on a 2-core CPU
    python -m minicnn.shortcut --train-size 3000 --epochs 2 --json
"""
import json
import os
import sys

from .. import world
from ..backend import check_device
from ..cli import ArgumentParser, add_seed_option, check_outdir, int_range, main_wrapper
from .experiment import CUE_CLASS, CUE_PROB, run



def _main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.shortcut", description=__doc__)
    parser.add_argument("--cue-class", default=CUE_CLASS, choices=world.CLASSES,
                        help=f"the class whose images carry the cue (default {CUE_CLASS})")
    parser.add_argument("--train-size", type=int_range(100, 100_000), default=6000, help="training images (default 6000)")
    parser.add_argument("--epochs", type=int_range(1, 50), default=3, help="passes over them (default 3)")
    parser.add_argument("--images", type=int_range(100, 20_000), default=1000, help="held-out images (default 1000)")
    add_seed_option(parser)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu (default) or cuda (needs cupy and an NVIDIA GPU)")
    parser.add_argument("--outdir", default=".", help="where shortcut.png goes (default .)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")
    args = parser.parse_args(argv)
    check_outdir(args.outdir)
    check_device(args.device)
    if not args.quiet:
        print(f"training on {args.train_size} images, the cue on {CUE_PROB:.0%} of the {args.cue_class} images ...",
              file=sys.stderr)
    report = run(args.cue_class, args.train_size, args.epochs, args.images, args.seed, args.device,
                 quiet=args.quiet or not sys.stderr.isatty(), figure_path=os.path.join(args.outdir, "shortcut.png"))
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for name in ("cheating", "honest"):
        r = report[name]
        print(f"{name} model: {r['accuracy_clean']:.1%} right on clean held-out images; {args.cue_class} "
              f"{r['cue_class_accuracy_with_cue']:.1%} with the cue, {r['cue_class_accuracy_without_cue']:.1%} "
              f"without; the cue alone turns {r['flip_rate']:.1%} of the other classes' images into {args.cue_class}")
    print(f"share of each saliency map on the cue ({report['cue_area']:.1%} of the image) and on the object "
          f"({report['object_area']:.0%}), mean +- sd over {report['explained_images']} {args.cue_class} images:")
    for method in report["cheating"]["saliency"]:
        c, h = report["cheating"]["saliency"][method], report["honest"]["saliency"][method]
        print(f"  {method:10s}  cheating: cue {c['cue'][0]:5.1%} +- {c['cue'][1]:4.1%}, object {c['object'][0]:5.1%}"
              f"   honest: cue {h['cue'][0]:5.1%} +- {h['cue'][1]:4.1%}, object {h['object'][0]:5.1%}")
    print(f"wrote {report['figure']}")


main = main_wrapper(_main)


if __name__ == "__main__":
    main()
