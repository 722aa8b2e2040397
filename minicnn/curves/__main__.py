"""``python -m minicnn.curves LAYER``: find curve detectors, and show the evidence.

    python -m minicnn.curves conv3_1                  # the world model
    python -m minicnn.curves conv3_3 --model vgg19    # VGG19 (weights downloaded on first use)
"""
import json
import os

from ..files import output_name
from ..cli import ArgumentParser, UsageError, add_model_options, int_range, check_outdir, load_model_from_args, main_wrapper
from ..progress import shown
from .score import CURVE_THRESHOLD, NULL_COPIES, ORIENTATIONS, analyze, figure, summary


def _held_out(net, n=500):
    """A built-in model's own held-out images, for the figure's dataset examples (None for
    a model without a world of its own: VGG19, VGG16, a file)."""
    from ..hierarchy import HELD_OUT_SEED
    from ..models import builtin_of
    spec = builtin_of(net)
    return None if spec is None else spec.world.make_dataset(n, seed=HELD_OUT_SEED)[0]


def _main(argv=None):
    from ..vgg19 import find_layer
    parser = ArgumentParser(prog="python -m minicnn.curves", description=__doc__)
    parser.add_argument("layer", help="a convolutional layer: conv3_1, relu3_1, 14, block3_conv3 ...")
    add_model_options(parser)
    parser.add_argument("--top", type=int_range(1, 64), default=6, help="channels in the figure (default 6)")
    parser.add_argument("--orientations", type=int_range(8, 360), default=ORIENTATIONS,
                        help=f"orientations per radius (default {ORIENTATIONS}: every 10 degrees)")
    parser.add_argument("--null-copies", type=int_range(0, 16), default=NULL_COPIES,
                        help=f"randomly initialised copies for the null (default {NULL_COPIES})")
    parser.add_argument("--vis-steps", type=int_range(1, 4096), default=128, help="feature-visualization steps (default 128)")
    parser.add_argument("--outdir", default=".", help="where the figure goes (default .)")
    parser.add_argument("--json", action="store_true", help="print every channel's numbers as JSON")
    args = parser.parse_args(argv)
    check_outdir(args.outdir)
    if args.orientations % 2:
        raise UsageError("--orientations must be even (each arc is also probed turned by 180 degrees)")
    net = load_model_from_args(args)
    layer = find_layer(net, args.layer)
    if net.receptive_field(layer) is None:
        raise UsageError(f"{layer} is not a convolutional layer: curve detectors are looked for in "
                         "conv, relu or pool layers")
    progress = shown(args.quiet or args.json)
    ranked, probe = analyze(net, layer, orientations=args.orientations, null_copies=args.null_copies,
                            progress=progress)
    path = os.path.join(args.outdir, output_name(probe["layer"], "curves", suffix=".png"))
    figure(net, ranked, probe, path, top=min(args.top, len(ranked)), vis_steps=args.vis_steps, progress=progress,
           examples=_held_out(net))
    result = summary(ranked, probe)
    result["figure"] = path
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{probe['layer']}: {len(result['curve_detectors'])} of {len(ranked)} channels are curve detectors "
          f"(score >= {CURVE_THRESHOLD} and above the null's 99th percentile {probe['null_99']:.2f}); "
          f"receptive field {probe['rf_size']} px")
    print(f"  {'channel':>7s} {'label':>6s} {'score':>6s} {'K':>5s} {'Z':>5s} {'D':>5s} {'T':>5s} "
          f"{'orient.':>7s} {'radius':>6s} polarity")
    for s in ranked[:max(args.top, 10)]:
        print(f"  {s['channel']:7d} {s['label']:>6s} {s['score']:6.2f} {s['curvature']:5.2f} {s['control']:5.2f} "
              f"{s['direction']:5.2f} {s['tuning']:5.2f} {s['preferred_orientation']:7.0f} "
              f"{s['preferred_radius']:6.1f} {s['polarity']}")
    print(f"  wrote {path}")


main = main_wrapper(_main)


if __name__ == "__main__":
    main()
