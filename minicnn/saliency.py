"""Saliency maps: which pixels drove a prediction? ``python -m minicnn.saliency IMG``.

Every method is a hand-written backward pass through minicnn's network and returns its result
in *pixel space*: derivatives with respect to RGB pixels in [0, 1], whatever preprocessing the
weights expect (see minicnn.preprocess). Scores are class logits (before softmax).

    python -m minicnn.saliency examples/star.png                       # vanilla, shapes model
    python -m minicnn.saliency photo.jpg --model vgg19 --method all --class tabby
    python -m minicnn.saliency photo.jpg --model vgg19 --sanity        # Adebayo et al.'s test
"""
import argparse
import difflib
import json
import os
import sys

import numpy as np

from .backend import get_xp, to_device, to_numpy
from .cli import UsageError, add_model_options, check_outdir, load_model_from_args, main_wrapper
from .preprocess import preprocess, preprocess_backward

METHODS = ("vanilla", "smoothgrad", "integrated", "guided", "gradcam")


# ------------------------------------------------------------------------------------------------
# The one primitive: d logit[target] / d pixels


def class_gradient(net, pixels, targets, relu_rule="plain"):
    """(logits, d logit[n, targets[n]] / d pixels[n]) for a batch of RGB pixels (N, 3, H, W).

    One forward pass and one backward pass of the one-hot logit gradient, no parameter
    gradients. Images in a batch are independent, so one backward pass gives every image's own
    gradient. Arrays stay on the network's device.
    """
    xp = get_xp(pixels)
    prep = net.meta["preprocessing"]
    logits = net.forward(preprocess(pixels, prep))
    dlogits = xp.zeros_like(logits)
    dlogits[xp.arange(len(targets)), xp.asarray(targets)] = 1.0
    dx = net.backward(dlogits, relu_rule=relu_rule)
    return logits, preprocess_backward(dx, prep)


def _saliency(attribution):
    """The map that is drawn: max over the colour channels of |attribution|, (N, H, W)."""
    return get_xp(attribution).abs(attribution).max(axis=1)


# ------------------------------------------------------------------------------------------------
# Methods


def vanilla(net, pixels, targets):
    """Simonyan, Vedaldi & Zisserman 2013, "Deep Inside Convolutional Networks: Visualising
    Image Classification Models and Saliency Maps": the gradient of the class score with
    respect to the pixels; the map is its largest absolute value over the colour channels.
    """
    logits, grad = class_gradient(net, pixels, targets)
    return {"logits": logits, "gradient": grad, "saliency": _saliency(grad)}


def smoothgrad(net, pixels, targets, samples=25, noise=0.15, seed=0, batch=25, noise_tensor=None):
    """Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise by adding
    noise": the mean gradient over ``samples`` copies of the image with Gaussian noise of
    standard deviation ``noise`` x (input range) added; the pixel range is [0, 1], so sigma =
    noise. Copies run through the network ``batch`` at a time. ``noise_tensor`` (samples, 3, H,
    W) replaces the random noise (the tests use it to compare with a reference).
    """
    xp = get_xp(pixels)
    rng = np.random.default_rng(seed)
    attributions = []
    for img, target in zip(pixels, targets):
        if noise_tensor is None:
            eps = rng.standard_normal((samples,) + img.shape).astype(np.float32) * np.float32(noise)
        else:
            eps = np.asarray(noise_tensor, dtype=np.float32)
        eps = to_device(eps, "cuda" if xp is not np else "cpu")
        total = xp.zeros(img.shape, dtype=pixels.dtype)
        for i in range(0, len(eps), batch):
            noisy = img[None] + eps[i:i + batch]
            _, grad = class_gradient(net, noisy, [target] * len(noisy))
            total += grad.sum(axis=0)
        attributions.append(total / len(eps))
    attribution = xp.stack(attributions)
    return {"attribution": attribution, "saliency": _saliency(attribution)}


def integrated(net, pixels, targets, steps=50, baseline=None, batch=25):
    """Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks": integrated
    gradients along the straight path from a baseline x0 (black by default) to the image x,

        attribution = (x - x0) * integral_0^1 grad F(x0 + a (x - x0)) da,

    with the midpoint rule over ``steps`` points a = (k + 1/2) / steps, batched. Completeness:
    sum(attribution) = F(x) - F(x0) up to the quadrature error, which is reported.
    """
    xp = get_xp(pixels)
    alphas = (np.arange(steps, dtype=np.float32) + np.float32(0.5)) / np.float32(steps)
    attributions, checks = [], []
    for img, target in zip(pixels, targets):
        base = xp.zeros_like(img) if baseline is None else xp.asarray(baseline, dtype=img.dtype)
        total = xp.zeros(img.shape, dtype=pixels.dtype)
        for i in range(0, steps, batch):
            a = to_device(alphas[i:i + batch], "cuda" if xp is not np else "cpu")[:, None, None, None]
            path = base[None] + a * (img - base)[None]
            _, grad = class_gradient(net, path, [target] * len(path))
            total += grad.sum(axis=0)
        attribution = (img - base) * total / steps
        ends = net.forward(preprocess(xp.stack([img, base]), net.meta["preprocessing"]))[:, target]
        attributions.append(attribution)
        checks.append({"sum_of_attributions": float(attribution.sum()),
                       "score_difference": float(ends[0] - ends[1])})
    attribution = xp.stack(attributions)
    return {"attribution": attribution, "saliency": _saliency(attribution), "completeness": checks}


def guided(net, pixels, targets):
    """Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for Simplicity: The All
    Convolutional Net": guided backpropagation. The backward pass through every ReLU also
    zeroes negative gradients (``relu_rule="guided"``), passing down only evidence *for* the
    class. Sharp, image-like maps; but not a true gradient (see the sanity check).
    """
    logits, grad = class_gradient(net, pixels, targets, relu_rule="guided")
    return {"logits": logits, "attribution": grad, "saliency": _saliency(grad)}


def last_conv_relu(net):
    """Grad-CAM's default layer: the ReLU after the last convolution (its rectified maps)."""
    convs = [i for i, layer in enumerate(net.layers) if layer.kind == "conv"]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer")
    after = net.layers[convs[-1] + 1] if convs[-1] + 1 < len(net.layers) else None
    return after.name if after is not None and after.kind == "relu" else net.layers[convs[-1]].name


def upsample_bilinear(maps, H, W):
    """(N, h, w) -> (N, H, W) by bilinear interpolation, sampling at pixel centres (as
    PyTorch's interpolate with align_corners=False): output pixel i reads source position
    (i + 0.5) * h / H - 0.5, clamped to the map's edge."""
    xp = get_xp(maps)
    N, h, w = maps.shape

    def axis(out_size, in_size):
        pos = xp.maximum((xp.arange(out_size, dtype=maps.dtype) + 0.5) * (in_size / out_size) - 0.5, 0)
        lo = xp.minimum(pos.astype(xp.int64), in_size - 1)
        hi = xp.minimum(lo + 1, in_size - 1)
        return lo, hi, pos - lo

    r0, r1, fr = axis(H, h)
    c0, c1, fc = axis(W, w)
    rows = maps[:, r0] * (1 - fr)[None, :, None] + maps[:, r1] * fr[None, :, None]      # (N, H, w)
    return rows[:, :, c0] * (1 - fc)[None, None, :] + rows[:, :, c1] * fc[None, None, :]


def gradcam(net, pixels, targets, layer=None):
    """Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, "Grad-CAM: Visual Explanations
    from Deep Networks via Gradient-based Localization": at a conv layer with maps A_k (default:
    the last conv, after its ReLU), weight each map by alpha_k = mean over space of
    d score / d A_k, then cam = ReLU(sum_k alpha_k A_k), upsampled to the image.
    """
    xp = get_xp(pixels)
    layer = layer or last_conv_relu(net)
    logits = net.forward(preprocess(pixels, net.meta["preprocessing"]), keep={layer})
    acts = net.activations[layer]
    if acts.ndim != 4:
        raise ValueError(f"Grad-CAM needs a convolutional layer; {layer} is not one")
    dlogits = xp.zeros_like(logits)
    dlogits[xp.arange(len(targets)), xp.asarray(targets)] = 1.0
    dacts = net.backward(dlogits, stop_at=layer)                 # (N, K, h, w)
    alphas = dacts.mean(axis=(2, 3))                              # (N, K)
    cam = xp.maximum((alphas[:, :, None, None] * acts).sum(axis=1), 0)   # (N, h, w)
    return {"logits": logits, "cam": cam, "layer": layer,
            "saliency": upsample_bilinear(cam, pixels.shape[2], pixels.shape[3])}


def run_method(method, net, pixels, targets, options):
    if method == "vanilla":
        return vanilla(net, pixels, targets)
    if method == "smoothgrad":
        return smoothgrad(net, pixels, targets, samples=options.get("samples", 25),
                          noise=options.get("noise", 0.15), seed=options.get("seed", 0))
    if method == "integrated":
        return integrated(net, pixels, targets, steps=options.get("steps", 50),
                          baseline=options.get("baseline"))
    if method == "guided":
        return guided(net, pixels, targets)
    if method == "gradcam":
        return gradcam(net, pixels, targets, layer=options.get("layer"))
    raise ValueError(f"unknown method {method!r}")


# ------------------------------------------------------------------------------------------------
# Classes by index or name


def resolve_class(spec, class_names):
    """A class index from an index or a name: exact (case-insensitive), else a unique prefix,
    else a unique substring. Ambiguous or unknown names raise ValueError listing candidates."""
    spec = str(spec).strip()
    if spec.lstrip("-").isdigit():
        index = int(spec)
        if not 0 <= index < len(class_names):
            raise ValueError(f"class index {index} is out of range 0..{len(class_names) - 1}")
        return index
    low = spec.lower()
    names = [c.lower() for c in class_names]
    for rule in (lambda c: c == low, lambda c: c.startswith(low), lambda c: low in c):
        hits = [i for i, c in enumerate(names) if rule(c)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            shown = ", ".join(f"{class_names[i]} ({i})" for i in hits[:10])
            more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
            raise ValueError(f"class {spec!r} is ambiguous: {shown}{more}")
    close = difflib.get_close_matches(low, names, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(class_names[names.index(c)] for c in close)}" if close else ""
    raise ValueError(f"unknown class {spec!r}{hint}")


# ------------------------------------------------------------------------------------------------
# Command line


def _outputs(stem, method, outdir):
    return os.path.join(outdir, f"{stem}_{method}.png"), os.path.join(outdir, f"{stem}_{method}.npz")


def _save_npz(path, **arrays):
    tmp = path + ".part.npz"
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _main(argv=None):
    from .heatmaps import method_figure, panel_figure
    from .images import load_image
    from .predict import print_top, softmax, top_k
    from .weights import require_classifier
    parser = argparse.ArgumentParser(prog="python -m minicnn.saliency", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", metavar="IMG")
    add_model_options(parser)
    parser.add_argument("--method", default=None, choices=METHODS + ("all",),
                        help="default: vanilla (with --sanity: all)")
    parser.add_argument("--class", dest="target", metavar="IDX|NAME",
                        help="explain this class (default: each image's top-1)")
    parser.add_argument("--layer", help="Grad-CAM layer (default: the last conv, after its ReLU)")
    parser.add_argument("--samples", type=int, default=25, help="SmoothGrad: noisy copies (default 25)")
    parser.add_argument("--noise", type=float, default=0.15,
                        help="SmoothGrad: noise std as a fraction of the pixel range (default 0.15)")
    parser.add_argument("--steps", type=int, default=50, help="integrated gradients: steps (default 50)")
    parser.add_argument("--baseline", choices=["black", "white", "grey"], default="black",
                        help="integrated gradients: the baseline image (default black)")
    parser.add_argument("--sanity", action="store_true",
                        help="run Adebayo et al.'s cascading model-randomization test instead")
    parser.add_argument("--outdir", default=".", help="where the .png and .npz go (default: here)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples < 1 or args.steps < 1 or not 0 <= args.noise <= 10:
        raise UsageError("--samples and --steps must be at least 1, --noise between 0 and 10")
    check_outdir(args.outdir)

    net = load_model_from_args(args)
    require_classifier(net)
    size = net.input_shape[1]
    pixels_host = np.stack([load_image(path, size) for path in args.images])   # all checked first
    target = None
    if args.target is not None:
        try:
            target = resolve_class(args.target, net.class_names)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.layer is not None:
        from .vgg19 import resolve_layer
        try:
            args.layer = resolve_layer(net, args.layer)
        except KeyError as e:
            raise UsageError(str(e).strip("'\"")) from None
        if net.layer(args.layer).kind not in ("conv", "relu", "pool") or \
                net.position(args.layer) >= next(i for i, l in enumerate(net.layers) if l.kind in ("flatten", "linear")):
            raise UsageError(f"--layer {args.layer}: Grad-CAM needs a convolutional layer")
    pixels = to_device(pixels_host, args.device)
    logits = to_numpy(net.forward(preprocess(pixels, net.meta["preprocessing"])))
    targets = [target if target is not None else int(row.argmax()) for row in logits]
    options = {"samples": args.samples, "noise": args.noise, "seed": args.seed, "steps": args.steps,
               "layer": args.layer,
               "baseline": None if args.baseline == "black" else
               to_device(np.full(pixels_host.shape[1:], 1.0 if args.baseline == "white" else 0.5, np.float32), args.device)}
    stems = [os.path.splitext(os.path.basename(p))[0] for p in args.images]
    report = []

    if args.sanity:
        from .sanity import run_sanity
        methods = None if args.method in (None, "all") else [args.method]
        for k, stem in enumerate(stems):
            report.append(run_sanity(net, pixels[k:k + 1], targets[k], options, stem, args.outdir,
                                     quiet=args.quiet or args.json, methods=methods))
        if args.json:
            print(json.dumps(report, indent=1))
        return

    args.method = args.method or "vanilla"
    methods = list(METHODS) if args.method == "all" else [args.method]
    results = {}
    from tqdm import tqdm
    for method in tqdm(methods, desc="saliency", disable=args.quiet or not sys.stderr.isatty() or len(methods) == 1,
                       file=sys.stderr):
        results[method] = run_method(method, net, pixels, targets, options)
    probs = softmax(logits)
    written = []
    for k, stem in enumerate(stems):
        t = targets[k]
        label = f"{net.class_names[t]} ({t}), p = {probs[k, t]:.1%}"
        entry = {"image": args.images[k], "target": t, "target_name": net.class_names[t],
                 "probability": float(probs[k, t]),
                 "top5": [{"class": c, "name": n, "probability": p} for c, n, p in top_k(net, logits[k], 5)],
                 "outputs": {}}
        for method, r in results.items():
            png, npz = _outputs(stem, method, args.outdir)
            arrays = {"saliency": to_numpy(r["saliency"][k]), "logits": logits[k], "target": np.int64(t)}
            if "gradient" in r:
                arrays["gradient"] = to_numpy(r["gradient"][k])
            if "attribution" in r:
                arrays["attribution"] = to_numpy(r["attribution"][k])
            if "cam" in r:
                arrays["cam"] = to_numpy(r["cam"][k])
            _save_npz(npz, **arrays)
            written.append(npz)
            if args.method != "all":
                method_figure(png, pixels_host[k], arrays["saliency"], method, label,
                              note=f"layer {r['layer']}" if "layer" in r else None)
                written.append(png)
            entry["outputs"][method] = {"npz": npz} | ({"png": png} if args.method != "all" else {})
            if "completeness" in r:
                entry["completeness"] = r["completeness"][k]
        if args.method == "all":
            png = os.path.join(args.outdir, f"{stem}_all.png")
            panel_figure(png, pixels_host[k], {m: to_numpy(r["saliency"][k]) for m, r in results.items()}, label)
            entry["outputs"]["all"] = {"png": png}
        report.append(entry)

    if args.json:
        print(json.dumps(report, indent=1))
        return
    for entry in report:
        print_top(entry["image"], entry["top5"])
        print(f"  explained: {entry['target_name']} ({entry['target']})")
        if "completeness" in entry:
            c = entry["completeness"]
            print(f"  integrated gradients completeness: sum of attributions {c['sum_of_attributions']:.4f}, "
                  f"score difference {c['score_difference']:.4f}")
        for method, files in entry["outputs"].items():
            print(f"  {method}: {', '.join(files.values())}")


main = main_wrapper(_main)

if __name__ == "__main__":
    main()
