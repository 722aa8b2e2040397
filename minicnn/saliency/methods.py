"""Saliency methods: which pixels drove a prediction?

Every method is a hand-written backward pass through minicnn's network and returns its result
in *pixel space*: derivatives with respect to RGB pixels in [0, 1], whatever preprocessing the
weights expect (see minicnn.preprocess). A target is a class, whose score is its logit (before
the softmax), or a unit inside the network (minicnn.saliency.targets): every method explains
either.
"""
import numpy as np

from ..backend import device_of, get_xp, to_device
from .result import Saliency
from .targets import scores, seed, until

METHODS = ("vanilla", "smoothgrad", "integrated", "guided", "gradcam", "occlusion")
BASELINES = ("black", "white", "grey", "blur", "noise")
MEMORY_BUDGET = 8 << 30   # bytes one batch of copies may take, estimated as below
# Copies per pass of SmoothGrad and integrated gradients unless given. On the CPU a small batch
# is as fast or faster and holds a fifth of the memory (VGG19's SmoothGrad, the whole command
# on this project's 2-core CPU: 16.0 s and 1.6 GB peak at 5, 18.7 s and 3.5 GB at 25); a GPU
# needs big batches to keep busy (tutorial, chapter 12).
DEFAULT_BATCH = {"cpu": 5, "cuda": 25}


def batch_limit(net, batch, device="cpu"):
    """``batch`` (None: the device's DEFAULT_BATCH), capped so that a batch of copies stays within MEMORY_BUDGET: each copy is
    counted as every layer's output twice (the tape, and the gradient on the way back), in
    float32 — about 3x what VGG19 measures, so the cap (34 copies for VGG19) errs safe. The
    batch size never changes a result, only the memory and the speed."""
    batch = DEFAULT_BATCH.get(device, DEFAULT_BATCH["cpu"]) if batch is None else batch
    return max(1, min(int(batch), MEMORY_BUDGET // (8 * net.values_per_image())))


# ------------------------------------------------------------------------------------------------
# The one primitive: d score[target] / d pixels


def guided_relu(dout, out):
    """Guided backpropagation's ReLU rule (Springenberg et al. 2015): the true gradient where
    the unit is on (out > 0), and additionally zero where dout < 0, so that only evidence *for*
    the target passes down. Not a gradient; given to the backward pass as its ReLU rule."""
    return dout * ((out > 0) & (dout > 0))


def target_gradient(net, pixels, targets, relu=None, p=None):
    """(output, d score[n] / d pixels[n]) for a batch of RGB pixels (N, 3, H, W): the score of
    image n is the logit of class targets[n], or the unit targets[n]'s activation (the forward
    pass then stops at the unit's layer, and ``output`` is that layer's).

    One forward pass and one backward pass of the score's gradient, no parameter gradients.
    Images in a batch are independent, so one backward pass gives every image's own gradient.
    Arrays stay on the network's device. ``relu``: a rule for the ReLUs' backward pass
    (``guided_relu``), or None for the true gradient. ``p``: the recorded pass of these pixels
    to the targets' layer, when one was already run (``image_pass``); otherwise it is run here.
    """
    p = p or net.run(pixels, until=until(targets))
    return p.output, p.backward(seed(p.output, targets), relu=relu)


class_gradient = target_gradient      # the name of the class-score case


def target_scores(net, pixels, targets):
    """The targets' scores for RGB pixels (N, 3, H, W), without a tape (inference)."""
    return scores(net.forward(pixels, until=until(targets)), targets)


def _saliency(attribution):
    """The map that is drawn: max over the colour channels of |attribution|, (N, H, W)."""
    return get_xp(attribution).abs(attribution).max(axis=1)


def _per_pixel(method, attribution, logits=None, **fields):
    """A method's result from a per-pixel, per-channel attribution (N, 3, H, W): the map drawn
    is its largest absolute value over the colour channels; the signed map its sum over them,
    as Captum's ``visualize_image_attr`` draws it."""
    return Saliency(method, _saliency(attribution), attribution.sum(axis=1), attribution, logits, **fields)


# ------------------------------------------------------------------------------------------------
# Methods


def vanilla(net, pixels, targets, p=None):
    """Simonyan, Vedaldi & Zisserman 2013, "Deep Inside Convolutional Networks: Visualising
    Image Classification Models and Saliency Maps": the gradient of the class score with
    respect to the pixels; the map is its largest absolute value over the colour channels.
    ``p``: the images' pass, when already run (``image_pass``).
    """
    logits, grad = target_gradient(net, pixels, targets, p=p)
    return _per_pixel("vanilla", grad, logits)


def smoothgrad(net, pixels, targets, samples=25, noise=0.15, seed=0, batch=None, noise_tensor=None):
    """Smilkov, Thorat, Kim, Viegas & Wattenberg 2017, "SmoothGrad: removing noise by adding
    noise": the mean gradient over ``samples`` copies of the image with Gaussian noise of
    standard deviation ``noise`` x (input range) added; the pixel range is [0, 1], so sigma =
    noise. Copies run through the network ``batch`` at a time (None: DEFAULT_BATCH; at most ``batch_limit``). ``noise_tensor`` (samples, 3, H,
    W) replaces the random noise (the tests use it to compare with a reference). On a GPU the
    noise is drawn there (by CuPy, from the same seed but other numbers than NumPy's): drawing
    25 images of noise on the host and copying them over would take longer than the gradients.
    """
    xp = get_xp(pixels)
    on_host = device_of(pixels) == "cpu"
    rng = np.random.default_rng(seed) if on_host else xp.random.RandomState(seed)
    batch = batch_limit(net, batch, device_of(pixels))
    given = None if noise_tensor is None else to_device(np.asarray(noise_tensor, dtype=np.float32), device_of(pixels))
    attributions = []
    for img, target in zip(pixels, targets):
        if given is not None:
            eps = given                 # the same noise for every image
        elif on_host:
            eps = rng.standard_normal((samples,) + img.shape).astype(np.float32) * np.float32(noise)
        else:
            eps = rng.standard_normal((samples,) + img.shape, dtype=xp.float32) * xp.float32(noise)
        total = xp.zeros(img.shape, dtype=pixels.dtype)
        for i in range(0, len(eps), batch):
            noisy = img[None] + eps[i:i + batch]
            _, grad = target_gradient(net, noisy, [target] * len(noisy))
            total += grad.sum(axis=0)
        attributions.append(total / len(eps))
    settings = {"samples": samples, "noise": noise, "seed": seed} if noise_tensor is None else {"samples": len(given)}
    return _per_pixel("smoothgrad", xp.stack(attributions), settings=settings)


def integrated(net, pixels, targets, steps=50, baseline=None, batch=None, baseline_name=None):
    """Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks": integrated
    gradients along the straight path from a baseline x0 (black by default) to the image x,

        attribution = (x - x0) * integral_0^1 grad F(x0 + a (x - x0)) da,

    with the midpoint rule over ``steps`` points a = (k + 1/2) / steps, batched. Completeness:
    sum(attribution) = F(x) - F(x0) up to the quadrature error, which is reported.
    ``baseline_name`` says what the baseline is, for the settings (default: black, or "given").
    """
    xp = get_xp(pixels)
    batch = batch_limit(net, batch, device_of(pixels))
    alphas = (np.arange(steps, dtype=np.float32) + np.float32(0.5)) / np.float32(steps)
    attributions, checks = [], []
    for img, target in zip(pixels, targets):
        base = xp.zeros_like(img) if baseline is None else xp.asarray(baseline, dtype=img.dtype)
        total = xp.zeros(img.shape, dtype=pixels.dtype)
        for i in range(0, steps, batch):
            a = to_device(alphas[i:i + batch], device_of(pixels))[:, None, None, None]
            path = base[None] + a * (img - base)[None]
            _, grad = target_gradient(net, path, [target] * len(path))
            total += grad.sum(axis=0)
        attribution = (img - base) * total / steps
        ends = target_scores(net, xp.stack([img, base]), [target] * 2)
        attributions.append(attribution)
        checks.append({"sum_of_attributions": float(attribution.sum()),
                       "score_difference": float(ends[0] - ends[1])})
    name = baseline_name or ("black" if baseline is None else "given")
    return _per_pixel("integrated", xp.stack(attributions), completeness=checks,
                      settings={"steps": steps, "baseline": name})


def guided(net, pixels, targets, p=None):
    """Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for Simplicity: The All
    Convolutional Net": guided backpropagation. The backward pass through every ReLU also
    zeroes negative gradients (``guided_relu``), passing down only evidence *for* the
    class. Sharp, image-like maps; but not a true gradient (see the sanity check). ``p``: the
    images' pass, when already run (``image_pass``: the rule applies on the way back only).
    """
    logits, grad = target_gradient(net, pixels, targets, relu=guided_relu, p=p)
    return _per_pixel("guided", grad, logits)


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


def gradcam_default_layer(net, stop, layer=None):
    """Grad-CAM's layer: ``layer``, else the unit's own layer (``stop``), else ``last_conv_relu``."""
    return layer or (stop if stop is not None else last_conv_relu(net))


def gradcam(net, pixels, targets, layer=None, p=None):
    """Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra 2017, "Grad-CAM: Visual Explanations
    from Deep Networks via Gradient-based Localization": at a conv layer with maps A_k (default:
    the last conv, after its ReLU; for a unit, the unit's own layer), weight each map by
    alpha_k = mean over space of d score / d A_k, then cam = ReLU(sum_k alpha_k A_k), upsampled
    to the image. (At a unit's own layer only its channel has a weight: the cam is the channel's
    map, rectified.) ``p``: the images' pass, when already run (``image_pass``, which keeps
    the layer's maps).
    """
    xp = get_xp(pixels)
    stop = until(targets)
    layer = gradcam_default_layer(net, stop, layer)
    if stop is not None and net.position(layer) > net.position(stop):
        raise ValueError(f"Grad-CAM's layer {layer} comes after the unit's layer {stop}")
    p = p or net.run(pixels, until=stop, keep={layer})
    logits, acts = p.output, p.activations[layer]
    if acts.ndim != 4:
        raise ValueError(f"Grad-CAM needs a convolutional layer; {layer} is not one")
    dacts = p.backward(seed(logits, targets), stop_at=layer)       # (N, K, h, w)
    alphas = dacts.mean(axis=(2, 3))                              # (N, K)
    signed = (alphas[:, :, None, None] * acts).sum(axis=1)          # (N, h, w)
    cam = xp.maximum(signed, 0)                                   # only evidence *for* the class
    H, W = pixels.shape[2:]
    return Saliency("gradcam", upsample_bilinear(cam, H, W), upsample_bilinear(signed, H, W), logits=logits,
                    cam=cam, cam_signed=signed, settings={"layer": layer})


def blur(pixels, sigma):
    """A Gaussian blur of (N, 3, H, W) images, standard deviation ``sigma`` px, edges repeated
    (separable: one 1-D kernel along rows, then along columns)."""
    xp = get_xp(pixels)
    radius = max(1, int(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k = xp.asarray((k / k.sum()).astype(pixels.dtype))
    p = xp.pad(pixels, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="edge")
    H, W = pixels.shape[2:]
    rows = sum(k[i] * p[:, :, i:i + H, :] for i in range(2 * radius + 1))
    return sum(k[i] * rows[:, :, :, i:i + W] for i in range(2 * radius + 1))


def baseline_image(kind, image, seed=0):
    """The reference image x0 of integrated gradients (or deletion), shaped like ``image``
    (3, H, W): black, white, grey (0.5), a blurred copy of the image (sigma = side / 16: the
    image's layout without its details), or uniform noise in [0, 1] from ``seed``."""
    xp = get_xp(image)
    if kind in ("black", "white", "grey"):
        return xp.full(image.shape, {"black": 0.0, "white": 1.0, "grey": 0.5}[kind], dtype=image.dtype)
    if kind == "blur":
        return blur(image[None], image.shape[-1] / 16)[0]
    if kind == "noise":
        noise = np.random.default_rng(seed).uniform(0, 1, image.shape).astype(np.float32)
        return to_device(noise, device_of(image)).astype(image.dtype)
    raise ValueError(f"unknown baseline {kind!r}; known: {', '.join(BASELINES)}")


def occlusion(net, pixels, targets, patch=None, stride=None, fill=0.5, batch=64):
    """Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks": slide a
    ``patch`` x ``patch`` square of grey (``fill``) over the image with ``stride``, and record
    how much the class score drops each time; a pixel's attribution is the mean drop over the
    patches that cover it (signed: a patch whose removal *raises* the score gives a negative
    value). No gradients at all: the reference the gradient methods can be checked against.
    Defaults: patch = side / 8, stride = patch / 2. Occluded copies run ``batch`` at a time.
    """
    xp = get_xp(pixels)
    batch = batch_limit(net, batch, device_of(pixels))
    N, _, H, W = pixels.shape
    patch = patch or max(1, H // 8)
    stride = stride or max(1, patch // 2)
    spots = [(i, j) for i in range(0, max(H - patch, 0) + 1, stride) for j in range(0, max(W - patch, 0) + 1, stride)]
    base = target_scores(net, pixels, targets)
    maps, counts = xp.zeros((N, H, W), dtype=pixels.dtype), xp.zeros((H, W), dtype=pixels.dtype)
    for i, j in spots:
        counts[i:i + patch, j:j + patch] += 1
    for n, target in enumerate(targets):
        for k in range(0, len(spots), batch):
            chunk = spots[k:k + batch]
            copies = xp.repeat(pixels[n:n + 1], len(chunk), axis=0)
            for c, (i, j) in enumerate(chunk):
                copies[c, :, i:i + patch, j:j + patch] = fill
            drops = base[n] - target_scores(net, copies, [target] * len(copies))
            for c, (i, j) in enumerate(chunk):
                maps[n, i:i + patch, j:j + patch] += drops[c]
    maps = maps / xp.maximum(counts, 1)
    return Saliency("occlusion", xp.maximum(maps, 0), maps, logits=base,
                    settings={"patch": patch, "stride": stride, "fill": fill})


# The methods whose one recorded pass of the images themselves also gives their scores: run
# first, that pass is all the forward work a job does (``image_pass``), no extra one to score.
ONE_PASS = ("vanilla", "guided", "gradcam")


def image_pass(net, pixels, stop, method, options):
    """The recorded pass that ``method`` (one of ONE_PASS) runs on the images, to layer ``stop``
    (None: the logits; a unit's layer): what a job that first needs the images' scores runs
    once, and hands to the method (``run_method(..., p=)``) instead of a forward of its own."""
    keep = {gradcam_default_layer(net, stop, options.get("layer"))} if method == "gradcam" else ()
    return net.run(pixels, until=stop, keep=keep)


def run_method(method, net, pixels, targets, options, p=None):
    """``method`` on the images for the targets, with the options as ``explain`` checked them.
    ``p``: the images' recorded pass (``image_pass``), for a method of ONE_PASS, used up here."""
    if p is not None and method not in ONE_PASS:
        raise ValueError(f"{method} runs passes of its own; only {', '.join(ONE_PASS)} take the images' pass")
    batch = {"batch": options["batch"]} if "batch" in options else {}   # else each method's default
    if method == "vanilla":
        return vanilla(net, pixels, targets, p=p)
    if method == "smoothgrad":
        return smoothgrad(net, pixels, targets, samples=options.get("samples", 25),
                          noise=options.get("noise", 0.15), seed=options.get("seed", 0), **batch)
    if method == "integrated":
        kind = options.get("baseline_kind")
        if kind is not None and kind != "black":           # one baseline per image, by its kind
            results = [integrated(net, pixels[n:n + 1], [t], steps=options.get("steps", 50),
                                  baseline=baseline_image(kind, pixels[n], options.get("seed", 0)),
                                  baseline_name=kind, **batch)
                       for n, t in enumerate(targets)]
            xp = get_xp(pixels)
            return _per_pixel("integrated", xp.concatenate([r.attribution for r in results]),
                              completeness=[r.completeness[0] for r in results], settings=results[0].settings)
        return integrated(net, pixels, targets, steps=options.get("steps", 50),
                          baseline=options.get("baseline"), **batch)
    if method == "guided":
        return guided(net, pixels, targets, p=p)
    if method == "gradcam":
        return gradcam(net, pixels, targets, layer=options.get("layer"), p=p)
    if method == "occlusion":
        return occlusion(net, pixels, targets, patch=options.get("patch"), stride=options.get("stride"), **batch)
    raise ValueError(f"unknown method {method!r}")
