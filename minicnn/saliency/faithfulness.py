"""Which saliency method to believe? Deletion and insertion scores (Petsiuk, Das & Saenko 2018,
"RISE: Randomized Input Sampling for Explanation of Black-box Models").

A map claims an order of importance over the pixels. Test the claim on the model itself:

* **deletion**: set the pixels to black in the map's order, most important first, and follow
  the class probability as more and more is deleted. A faithful map makes it fall fast: the
  area under the curve (AUC, the x axis running from 0 to 1) is *small*.
* **insertion**: start from a blurred copy of the image (its layout without its details) and
  put the pixels back in the same order. A faithful map makes the probability rise fast: the
  AUC is *large*.

A random order is the baseline every method must beat. Ties in a map (Grad-CAM's and
occlusion's flat regions, ReLU-clipped zeros) are broken at random, so no method gains from
the order in which pixels happen to be stored.
"""
import numpy as np

from ..backend import to_device, to_numpy
from ..classify import softmax
from .methods import baseline_image, run_method


def order_of(saliency, rng):
    """Pixel indices, most important first; ties in random order."""
    flat = np.asarray(saliency, dtype=np.float64).ravel()
    return np.lexsort((rng.random(flat.size), -flat))


def curves(net, image, target, order, steps=32, start=None):
    """Class probability after deleting / inserting the first k pixels of ``order``, for k at
    ``steps`` + 1 evenly spaced counts from 0 to all: (deletion, insertion), each (steps + 1,).
    ``start``: the blurred image insertion starts from (computed when not given)."""
    _, H, W = image.shape
    rank = np.empty(H * W, dtype=np.int64)
    rank[order] = np.arange(H * W)
    counts = np.linspace(0, H * W, steps + 1).round().astype(np.int64)
    mask = (rank[None, :] < counts[:, None]).reshape(steps + 1, 1, H, W).astype(np.float32)
    mask = to_device(mask, net.device)
    x = to_device(image, net.device)
    start = baseline_image("blur", x) if start is None else to_device(start, net.device)
    deleted = x[None] * (1 - mask)                                   # black where deleted
    inserted = start[None] * (1 - mask) + x[None] * mask
    out = []
    for batch in (deleted, inserted):
        logits = to_numpy(net.forward(batch.astype(x.dtype)))
        out.append(softmax(logits.astype(np.float64))[:, target])
    return out[0], out[1]


def auc(curve):
    """Area under a curve sampled at evenly spaced points of [0, 1] (trapezoid rule)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(((curve[:-1] + curve[1:]) / 2).mean())


def scores(net, image, target, saliency, steps=32, seed=0, start=None):
    """{"deletion": AUC, "insertion": AUC} for one map of one image."""
    deletion, insertion = curves(net, image, target, order_of(saliency, np.random.default_rng(seed)), steps, start)
    return {"deletion": auc(deletion), "insertion": auc(insertion)}


def evaluate(net, pixels, targets, methods, options=None, steps=32, seed=0, progress=None):
    """Deletion and insertion AUC of every method (and of random orders) on every image.

    ``pixels`` (N, 3, H, W) on the host; ``targets`` one class per image. Returns
    {method: {"deletion": [N values], "insertion": [N values]}} with "random" among the methods.
    """
    options = dict(options or {})
    out = {m: {"deletion": [], "insertion": []} for m in list(methods) + ["random"]}
    rng = np.random.default_rng(seed)
    for n, target in enumerate(targets):
        image = pixels[n]
        x = to_device(image[None], net.device)
        start = baseline_image("blur", x[0])          # insertion's starting image, once per image
        for method in methods:
            saliency = to_numpy(run_method(method, net, x, [int(target)], options).saliency[0])
            for key, value in scores(net, image, int(target), saliency, steps, seed + n, start).items():
                out[method][key].append(value)
        random_order = rng.permutation(image.shape[1] * image.shape[2])
        deletion, insertion = curves(net, image, int(target), random_order, steps, start)
        out["random"]["deletion"].append(auc(deletion))
        out["random"]["insertion"].append(auc(insertion))
        if progress is not None:
            progress.update(1)
    return out


def summary(results, resamples=10_000, seed=0):
    """Mean and standard deviation of each score, the methods ranked by insertion minus
    deletion (higher is better: the probability rises fast and falls fast), and every pair of
    methods compared **on the same images**: the mean of the per-image differences of
    insertion minus deletion, with its 95% bootstrap confidence interval (the images resampled
    ``resamples`` times); a difference is *resolved* when its interval leaves out 0. The spread
    over images is no error bar for a ranking: an image hard for one method is hard for all."""
    table = {m: {k: {"mean": float(np.mean(v)), "sd": float(np.std(v))} for k, v in r.items()}
             for m, r in results.items()}
    gaps = {m: np.asarray(r["insertion"]) - np.asarray(r["deletion"]) for m, r in results.items()}
    for m, gap in gaps.items():
        table[m]["insertion_minus_deletion"] = {"mean": float(gap.mean()), "sd": float(gap.std())}
    ranking = sorted(table, key=lambda m: -table[m]["insertion_minus_deletion"]["mean"])
    n = len(next(iter(gaps.values())))
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    paired = []
    for i, a in enumerate(ranking):
        for b in ranking[i + 1:]:
            d = gaps[a] - gaps[b]
            low, high = np.quantile(d[picks].mean(axis=1), [0.025, 0.975])
            paired.append({"better": a, "worse": b, "mean_difference": float(d.mean()),
                           "ci95": [float(low), float(high)], "resolved": bool(low > 0 or high < 0)})
    return {"methods": table, "ranking": ranking, "images": n, "paired": paired}
