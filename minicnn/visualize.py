"""Feature visualization: what input makes a channel fire? ``python -m minicnn.visualize``.

Activation maximization by gradient ascent on the input image, as Lucid does it, every
gradient written out: an objective on a layer (objectives.py), an image parameterization
(param.py), random transformations and regularizers (transforms.py), Adam (optim.py), and
one loop, ``render``, that wires them together.

    python -m minicnn.visualize conv2_2:5                          # one channel, shapes model
    python -m minicnn.visualize conv2_2 --channels 0-15            # a 4x4 grid
    python -m minicnn.visualize 14 --model vgg19 --channels 0-15   # "VGG19 layer 14" = conv3_3
    python -m minicnn.visualize fc8:281 --model vgg19              # a class model (tabby cat)
    python -m minicnn.visualize relu4_2 --from photo.jpg --model vgg19   # DeepDream
"""
import argparse
import json
import math
import os
import sys
from warnings import warn

import numpy as np

from . import objectives
from .backend import to_device, to_numpy
from .cli import UsageError, add_model_options, load_model_from_args, main_wrapper
from .optim import SGD, Adam
from .param import PARAMS
from .preprocess import preprocess, preprocess_backward
from .transforms import Roll, blur, l2_penalty, standard_transforms, tv_penalty


REDIRECT_STEPS = 16


def render(net, layer, objective, param, steps=512, lr=0.05, seed=0, transforms=(), size=None,
           n_images=1, l2=0.0, tv=0.0, blur_every=0, optimizer="adam", redirect_relu=True,
           init=None, progress=None, snapshot_every=0):
    """Optimize ``n_images`` images at once so that ``objective`` on ``layer`` grows.

    Each step: params -> pixels -> random transforms -> preprocess -> forward to ``layer`` ->
    objective -> backward to the input -> adjoints of preprocess and transforms -> minus the
    regularizers' gradients -> through the parameterization -> one optimizer step (ascent).
    Returns (pixels (N, 3, size, size) as numpy, history of mean scores, snapshots).
    """
    rng = np.random.default_rng(seed)
    xp = np if net.device == "cpu" else __import__("cupy")
    prep = net.meta["preprocessing"]
    params = param.init(n_images, size, rng, xp)
    if init is not None:                     # DeepDream: start from a real image
        params = xp.asarray(init, dtype=xp.float32).copy()
    opt = (Adam([params], lr=lr, sign=+1) if optimizer == "adam"
           else SGD([params], lr=lr, momentum=0.0, sign=+1))
    history, snapshots = [], []
    for step in range(steps):
        # Lucid's remedy for dead ReLUs: redirected ReLU gradients for the first 16 steps only
        relu_rule = "redirect" if redirect_relu and step < REDIRECT_STEPS else "plain"
        pixels = param.pixels(params)
        applied = [t.sample(rng, size) for t in transforms]
        x = pixels
        for t in applied:
            x = t.forward(x)
        act = net.forward(preprocess(x, prep), until=layer)
        score, dact = objective(act)
        dx = preprocess_backward(net.backward(dact, relu_rule=relu_rule), prep)
        if step == REDIRECT_STEPS and not bool((dx != 0).any()):
            warn("the gradient is exactly 0: every path to this unit is switched off (dead ReLUs); "
                 "try the pre-ReLU layer, another seed, or a larger --lr")
        for t in reversed(applied):
            dx = t.adjoint(dx)
        penalty = 0.0
        for weight, fn in ((l2, l2_penalty), (tv, tv_penalty)):
            if weight:
                value, grad = fn(pixels, weight)
                penalty += value
                dx = dx - grad
        opt.step([param.backward(params, dx)])
        param.project(params)
        if blur_every and param.name == "pixel" and (step + 1) % blur_every == 0:
            params[...] = blur(params)
        history.append(float(score.mean()) - penalty / n_images)
        if snapshot_every and (step % snapshot_every == 0 or step == steps - 1):
            snapshots.append(to_numpy(param.pixels(params)))
        if progress is not None:
            progress.set_postfix(score=f"{history[-1]:.3g}")
            progress.update(1)
    return to_numpy(param.pixels(params)), history, snapshots


def channel_activations(net, layer, pixels):
    """Mean activation of every channel of ``layer`` for each image: (N, channels)."""
    act = to_numpy(net.forward(to_device(preprocess(pixels, net.meta["preprocessing"]), net.device), until=layer))
    return act if act.ndim == 2 else act.mean(axis=(2, 3))


def parse_channels(spec, count):
    """'5', '0-15', '1,4,9' or '0-3,8' -> a list of channel indices, each checked."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            if not (lo.isdigit() and hi.isdigit()) or int(lo) > int(hi):
                raise UsageError(f"bad channel range {part!r} (use e.g. 0-15)")
            out += list(range(int(lo), int(hi) + 1))
        elif part.isdigit():
            out.append(int(part))
        else:
            raise UsageError(f"bad channel {part!r} (use an index, a list 1,4,9 or a range 0-15)")
    bad = [c for c in out if c >= count]
    if bad:
        raise UsageError(f"channel {bad[0]} does not exist: the layer has channels 0..{count - 1}")
    if not out or len(out) > 256:
        raise UsageError("give between 1 and 256 channels")
    return out


def grid_image(images, gap=2):
    """(N, 3, S, S) -> one (rows*S, cols*S, 3) picture, as square as possible, grey gaps."""
    N, _, S, _ = images.shape
    cols = math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    canvas = np.full((rows * (S + gap) - gap, cols * (S + gap) - gap, 3), 0.5, dtype=np.float32)
    for k in range(N):
        r, c = divmod(k, cols)
        canvas[r * (S + gap):r * (S + gap) + S, c * (S + gap):c * (S + gap) + S] = images[k].transpose(1, 2, 0)
    return canvas


def _main(argv=None):
    from tqdm import tqdm
    from .images import load_image, save_png
    from .vgg19 import resolve_layer
    parser = argparse.ArgumentParser(prog="python -m minicnn.visualize", description=__doc__.split("\n")[0])
    parser.add_argument("target", metavar="LAYER[:CHANNEL]",
                        help="conv3_3:5, 14:5, block3_conv3, features.14, fc8:281 ...")
    add_model_options(parser)
    parser.add_argument("--channels", help="several channels: 0-15, 1,4,9 (a grid image)")
    parser.add_argument("--neuron", action="store_true", help="one unit (the centre) instead of a whole channel")
    parser.add_argument("--from", dest="source", metavar="IMG", help="DeepDream: start from this image")
    parser.add_argument("--steps", type=int, default=None, help="optimization steps (default 512)")
    parser.add_argument("--size", type=int, default=None,
                        help="image side in px (default: 128 for conv layers on VGG19, 64 on the shapes "
                             "model; the model's input size after the flatten)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default 0.05, Lucid's)")
    parser.add_argument("--param", choices=sorted(PARAMS), default=None,
                        help="fourier (default; Lucid's decorrelated space) or pixel (the default with --from)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam",
                        help="adam (default) or plain gradient ascent")
    parser.add_argument("--no-transforms", action="store_true", help="no jitter/scale/rotate (naive)")
    parser.add_argument("--no-redirect", action="store_true", help="plain ReLU gradients throughout")
    parser.add_argument("--l2", type=float, default=None, help="L2 penalty weight")
    parser.add_argument("--tv", type=float, default=0.0, help="total-variation penalty weight")
    parser.add_argument("--blur-every", type=int, default=0, help="blur plain pixels every N steps")
    parser.add_argument("--gif", metavar="FILE.gif", help="also save the optimization as an animation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="FILE.png", help="output image (default LAYER_CHANNELS.png)")
    parser.add_argument("--json", action="store_true", help="print the final objective values as JSON")
    args = parser.parse_args(argv)

    net = load_model_from_args(args)
    name, _, chan = args.target.partition(":")
    try:
        layer = resolve_layer(net, name)
    except KeyError as e:
        raise UsageError(str(e).strip("'\"")) from None
    kind = net.layer(layer).kind
    linear = net.position(layer) >= next((i for i, l in enumerate(net.layers) if l.kind in ("flatten", "linear")),
                                         len(net.layers))
    count = net.output_shape(layer)[0]
    if args.source:
        if chan or args.channels:
            raise UsageError("DeepDream (--from) maximizes the whole layer: give no channel")
        channels = [None]
    elif args.channels:
        if chan:
            raise UsageError("give the channels either as LAYER:CHANNEL or with --channels, not both")
        channels = parse_channels(args.channels, count)
    elif chan:
        channels = parse_channels(chan, count)
    else:
        raise UsageError(f"which channel? e.g. {name}:0, or --channels 0-15 for a grid")
    steps = args.steps if args.steps is not None else 512
    if steps < 1 or args.lr <= 0:
        raise UsageError("--steps must be at least 1 and --lr positive")
    # Lucent's default: 128 px for conv layers (a quarter of 224's cost); the model's own input
    # size for layers after the flatten, which need exactly that
    size = args.size or (net.input_shape[1] if linear else min(128, net.input_shape[1] * 2))
    if linear and size != net.input_shape[1]:
        raise UsageError(f"{layer} comes after the flatten: the image must be {net.input_shape[1]} px")
    if not 8 <= size <= 1024:
        raise UsageError("--size must be between 8 and 1024")
    if args.neuron and linear:
        raise UsageError("--neuron needs a convolutional layer")
    out = args.out or f"{layer}_{'dream' if args.source else args.channels or chan}.png".replace(",", "_")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"--out {out}: the folder does not exist")
    note = f"{args.target} -> {layer}" + ("" if layer == name else f" (resolved from {name!r})")
    if not args.quiet and not args.json:
        print(f"visualizing {note}, {kind} layer, channels {channels if channels != [None] else 'all (DeepDream)'}",
              file=sys.stderr)

    param = PARAMS[args.param or ("pixel" if args.source else "fourier")]()
    init = None
    if args.source:
        if param.name != "pixel":
            raise UsageError("DeepDream (--from) changes a real image's pixels: use --param pixel")
        init = load_image(args.source, size)[None]
        objective = objectives.deepdream()
    elif args.neuron:
        objective = objectives.neuron(channels)
    else:
        objective = objectives.channel(channels)
    if linear:       # class models: keep the size; Simonyan et al.'s L2 penalty
        transforms = [] if args.no_transforms else [Roll(max(1, size // 28))]
        l2 = 1e-3 if args.l2 is None else args.l2
    else:
        transforms = [] if args.no_transforms else standard_transforms(size)
        l2 = args.l2 or 0.0
    with tqdm(total=steps, desc="optimizing", disable=args.quiet or args.json or not sys.stderr.isatty(),
              file=sys.stderr) as bar:
        images, history, snapshots = render(
            net, layer, objective, param, steps=steps, lr=args.lr, seed=args.seed, transforms=transforms,
            size=size, n_images=len(channels), l2=l2, tv=args.tv, blur_every=args.blur_every,
            optimizer=args.optimizer, redirect_relu=not args.no_redirect, init=init, progress=bar,
            snapshot_every=max(1, steps // 40) if args.gif else 0)
    save_png(out, grid_image(images))
    if args.gif:
        from PIL import Image
        frames = [Image.fromarray((np.clip(grid_image(s), 0, 1) * 255).astype(np.uint8)) for s in snapshots]
        tmp = args.gif + ".part"
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
        os.replace(tmp, args.gif)
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
                  f"{'the highest' if entry['rank_among_channels'] == 0 else str(entry['rank_among_channels']) + ' channels higher'} "
                  f"of the layer's channels on this image")


main = main_wrapper(_main)

if __name__ == "__main__":
    main()
