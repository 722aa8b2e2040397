"""``python -m minicnn.visualize LAYER[:CHANNEL]``: what input makes a channel fire?

    python -m minicnn.visualize conv2_2:5                          # one channel, world model
    python -m minicnn.visualize conv2_2 --channels 0-15            # a 4x4 grid
    python -m minicnn.visualize 14 --model vgg19 --channels 0-15   # "VGG19 layer 14" = conv3_3
    python -m minicnn.visualize fc8:281 --model vgg19              # a class model (tabby cat)
    python -m minicnn.visualize relu4_2 --from photo.jpg --model vgg19   # DeepDream

The picture shows each channel's image enlarged (nearest neighbour, at least 128 px a tile) under
its label; Ctrl-C stops the optimization early and still writes the picture so far.
"""
import json
import os
import sys

from ..cli import ArgumentParser, UsageError, add_model_options, check_outdir, add_seed_option, float_range, int_range, load_model_from_args, main_wrapper
from ..files import output_name
from ..images import save_gif, save_png
from ..progress import bar, shown
from .grids import grid_image, labelled_grid
from .job import plan, run
from .param import PARAMS
from .render import channel_activations


def _main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.visualize", description=__doc__)
    parser.add_argument("target", metavar="LAYER[:CHANNEL]",
                        help="conv3_3:5, 14:5, block3_conv3, features.14, fc8:281 ...")
    add_model_options(parser)
    parser.add_argument("--channels", help="several channels: 0-15, 1,4,9 (a grid image)")
    parser.add_argument("--neuron", action="store_true", help="one unit (the centre) instead of a whole channel")
    parser.add_argument("--from", dest="source", metavar="IMG", help="DeepDream: start from this image")
    parser.add_argument("--steps", type=int_range(1, 100_000), default=None, help="optimization steps (default 512)")
    parser.add_argument("--size", type=int_range(8, 1024), default=None,
                        help="image side in px (default: 128 for conv layers on VGG19, 64 on the shapes "
                             "model; the model's input size after the flatten)")
    parser.add_argument("--lr", type=float_range(0, 100, low_open=True), default=0.05, help="learning rate (default 0.05, Lucid's)")
    parser.add_argument("--param", choices=sorted(PARAMS), default=None,
                        help="fourier (default; Lucid's decorrelated space) or pixel (the default with --from)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="adam (default) or plain gradient ascent")
    parser.add_argument("--no-transforms", action="store_true", help="no jitter/scale/rotate (naive)")
    parser.add_argument("--no-redirect", action="store_true", help="plain ReLU gradients throughout")
    parser.add_argument("--l2", type=float_range(0, 1e6), default=None, help="L2 penalty weight")
    parser.add_argument("--tv", type=float_range(0, 1e6), default=0.0, help="total-variation penalty weight")
    parser.add_argument("--blur-every", type=int_range(0, 100_000), default=0, help="blur plain pixels every N steps")
    parser.add_argument("--gif", metavar="FILE.gif", help="also save the optimization as an animation")
    add_seed_option(parser)
    parser.add_argument("--out", metavar="FILE.png", help="output image (default LAYER_CHANNELS.png)")
    parser.add_argument("--json", action="store_true", help="print the final objective values as JSON")
    args = parser.parse_args(argv)

    net = load_model_from_args(args)
    job = plan(net, args.target, channels=args.channels, neuron=args.neuron, source=args.source, size=args.size,
               param=args.param, transforms=not args.no_transforms, l2=args.l2, tv=args.tv)
    layer, channels, labels = job.layer, job.channels, job.labels
    steps = args.steps if args.steps is not None else 512
    out = args.out or output_name(*job.name_parts, suffix=".png")
    for option, path, suffix in (("--out", out, ".png"), ("--gif", args.gif, ".gif")):
        if path is None:
            continue
        if os.path.isdir(path):
            raise UsageError(f"{option} {path}: is a folder; give a file name")
        if not path.lower().endswith(suffix):
            raise UsageError(f"{option} {path}: minicnn writes {suffix[1:].upper()} here; name the file *{suffix}")
        check_outdir(os.path.dirname(os.path.abspath(path)), f"{option}: the folder")
    name = args.target.partition(":")[0]
    note = f"{args.target} -> {layer}" + ("" if layer == name else f" (resolved from {name!r})")
    if not args.quiet and not args.json:
        print(f"visualizing {note}, {net.layer(layer).kind} layer, "
              f"channels {channels if channels != [None] else 'all (DeepDream)'}", file=sys.stderr)
    with bar(steps, "optimizing", shown(args.quiet or args.json)) as b:
        images, history, snapshots = run(
            net, job, steps=steps, lr=args.lr, seed=args.seed, blur_every=args.blur_every,
            optimizer=args.optimizer, redirect_relu=not args.no_redirect, progress=b,
            snapshot_every=max(1, steps // 40) if args.gif else 0, interruptible=True)

    def picture(batch):
        return grid_image(batch) if labels is None else labelled_grid(batch, labels)

    save_png(out, picture(images))
    if args.gif and snapshots:
        save_gif(args.gif, [picture(s) for s in snapshots])
    if len(history) < steps:                          # Ctrl-C: the picture so far is written
        print(f"stopped after {len(history)} of {steps} steps; wrote the picture so far to {out}", file=sys.stderr)
        raise KeyboardInterrupt
    # an independent check: the final images, untransformed, through a fresh forward pass
    acts = channel_activations(net, layer, images) if channels != [None] else None
    result = {"layer": layer, "requested": args.target, "output": out,
              "final_objective": history[-1] if history else None}
    if acts is not None:
        result["channels"] = [{"channel": c, "activation": float(acts[k, c]),
                               "rank_among_channels": int((acts[k] > acts[k, c]).sum())}
                              for k, c in enumerate(channels)]
    if args.json:
        print(json.dumps(result, indent=1))
    elif not args.quiet:
        print(f"wrote {out}" + (f" and {args.gif}" if args.gif else ""))
        for entry in result.get("channels", [])[:16]:
            print(f"  channel {entry['channel']}: mean activation {entry['activation']:.3f}, "
                  f"{_rank_words(entry['rank_among_channels'])} "
                  f"of the layer's channels on this image")


def _rank_words(higher):
    return "the highest" if higher == 0 else f"{higher} channel{'s' if higher > 1 else ''} higher"


main = main_wrapper(_main)

if __name__ == "__main__":
    main()
