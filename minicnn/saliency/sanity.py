"""The cascading model-randomization test of Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim
2018, "Sanity Checks for Saliency Maps".

If a saliency map explains what the model *learned*, destroying the learned weights must change
the map. Starting from the top (the class layer), each layer's weights are replaced by random
ones of the same scale, cumulatively, and every method's map is recomputed after each step. The
rank correlation (Spearman) between the original map and the randomized one is reported per
layer: a method whose map stays the same while the network is turned into noise (high
correlation all the way down) is showing the image's edges, not the model's reasoning.

The maps compared are the drawn ones: the largest |attribution| over the colour channels, so
the correlations are of absolute maps (a sign flip does not lower them). A correlation is read
against two floors, reported with it: the map of the fully randomized network (the cascade's
last step), and the image's own edges (``edge_map``), which a map can match with no model.

The paper's second test, **data randomization** (``data_randomization``), compares the maps
with those of a twin: the same architecture trained on the same images with their labels
permuted (``python -m minicnn.train --shuffle-labels``), which can only have memorised them. A
method that explains what was learned from the labels must give the twin different maps.
"""
import numpy as np

from ..backend import get_xp, to_numpy
from .heatmaps import colorize
from .methods import METHODS, run_method


def rankdata(a):
    """Ranks 0..n-1 of a 1-D array, ties sharing their average rank."""
    order = np.argsort(a, kind="stable")
    sorted_a = a[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_a)) + 1]
    ends = np.r_[starts[1:], len(a)]
    ranks = np.empty(len(a))
    ranks[order] = np.repeat((starts + ends - 1) / 2.0, ends - starts)
    return ranks


def spearman(a, b):
    """Spearman rank correlation of two maps (Pearson correlation of their ranks)."""
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def edge_map(pixels):
    """The image's own edges, (H, W): the largest Sobel gradient magnitude over the colour
    channels of pixels (1, 3, H, W) (edges replicated at the border)."""
    x = np.pad(to_numpy(pixels)[0], ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = (x[:, :-2, 2:] + 2 * x[:, 1:-1, 2:] + x[:, 2:, 2:]) - (x[:, :-2, :-2] + 2 * x[:, 1:-1, :-2] + x[:, 2:, :-2])
    gy = (x[:, 2:, :-2] + 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:]) - (x[:, :-2, :-2] + 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:])
    return np.hypot(gx, gy).max(axis=0)


def cascade(net, pixels, target, methods, options, seed=0, progress=None):
    """Maps after randomizing the parameter layers from the top down, cumulatively.

    Returns (layer names in randomization order, {method: [original map, map after each]}).
    The network's weights are restored before returning.
    """
    rng = np.random.default_rng(seed)
    order = [name for name, _ in net.params()][::-1]          # fc8 first ... conv1_1 last
    saved = {name: (layer.w, layer.b) for name, layer in net.params()}   # new arrays replace them:
    # the originals are never written (a loaded network's are read-only: Network.freeze)
    maps = {m: [] for m in methods}
    try:
        for step in range(len(order) + 1):
            if step > 0:
                layer = net.layer(order[step - 1])
                xp = get_xp(layer.w)
                std = float(to_numpy(layer.w).std())
                noise = rng.standard_normal(layer.w.shape).astype(np.float32) * np.float32(std)
                layer.w, layer.b = xp.asarray(noise), xp.zeros_like(layer.b)
            for m in methods:
                maps[m].append(to_numpy(run_method(m, net, pixels, [target], options).saliency[0]))
            if progress:
                progress.update(1)
    finally:
        for name, (w, b) in saved.items():
            net.layer(name).w, net.layer(name).b = w, b
    return order, maps


def run(net, pixels, target, options, methods=None, progress=None):
    """The cascade for one image (pixels (1, 3, H, W)) and every method's rank correlations.

    Returns (result, maps): result is JSON-ready (target, the layers in randomization order,
    the Spearman correlation of each method's map after each step with its original map, and
    the floors: each original map's correlation with the image's edges, and with the map of the
    fully randomized network); maps[method] holds the original map and the map after each step.
    """
    methods = list(methods or METHODS)
    order, maps = cascade(net, pixels, target, methods, options, seed=options.get("seed", 0), progress=progress)
    scores = {m: [spearman(maps[m][0], later) for later in maps[m][1:]] for m in methods}
    edges = edge_map(pixels)
    floor = {m: {"edges": spearman(maps[m][0], edges), "fully_random": scores[m][-1]} for m in methods}
    result = {"target": int(target), "target_name": net.class_names[target],
              "randomized_from_the_top": order, "spearman": scores, "floor": floor}
    return result, maps


def across_images(results):
    """Mean and standard deviation over images of each method's rank correlation after each
    randomization step (the results of ``run`` for several images of one network)."""
    order = results[0]["randomized_from_the_top"]
    spearman = {}
    for m in results[0]["spearman"]:
        values = np.array([r["spearman"][m] for r in results])           # (images, steps)
        spearman[m] = {"mean": values.mean(axis=0).tolist(), "sd": values.std(axis=0).tolist()}
    floor = {m: {k: {"mean": float(np.mean([r["floor"][m][k] for r in results])),
                     "sd": float(np.std([r["floor"][m][k] for r in results]))} for k in ("edges", "fully_random")}
             for m in results[0]["floor"]}
    return {"images": len(results), "randomized_from_the_top": order, "spearman": spearman, "floor": floor}


def figure(result, maps, path):
    """Every method's map after each randomization step, and the correlation curves below."""
    from ..plotting import finish, new_figure
    order, scores = result["randomized_from_the_top"], result["spearman"]
    methods = list(scores)
    cols = len(order) + 1
    fig = new_figure(figsize=(1.2 * cols + 1, 1.25 * len(methods) + 3.2))
    grid = fig.add_gridspec(len(methods) + 1, cols, height_ratios=[1] * len(methods) + [2.2])
    for r, m in enumerate(methods):
        for c in range(cols):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(colorize(maps[m][c]))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title("original" if c == 0 else order[c - 1], fontsize=7, rotation=60 if cols > 10 else 0)
            if c == 0:
                ax.set_ylabel(m, fontsize=8)
    ax = fig.add_subplot(grid[len(methods), :])
    for m in methods:
        ax.plot(range(1, cols), scores[m], "o-", label=m, markersize=3)
    ax.set_xticks(range(1, cols))
    ax.set_xticklabels(order, rotation=60, fontsize=7)
    ax.set_ylabel("rank correlation\nwith the original", fontsize=8)
    ax.set_xlabel("randomized from the top down to this layer (cumulative)", fontsize=8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7, ncol=len(methods))
    fig.suptitle(f"Cascading randomization (Adebayo et al. 2018): {result['target_name']}", fontsize=10)
    return finish(fig, path)


def data_randomization(net, twin, pixels, target, options, methods=None):
    """The data randomization test for one image (pixels (1, 3, H, W)): every method's map on
    ``net`` and on ``twin`` for the same class, and their rank correlation. Returns (result,
    maps): result is JSON-ready; maps[method] = [net's map, twin's map]."""
    methods = list(methods or METHODS)
    maps = {m: [to_numpy(run_method(m, model, pixels, [target], options).saliency[0]) for model in (net, twin)]
            for m in methods}
    edges = edge_map(pixels)
    result = {"target": int(target), "target_name": net.class_names[target],
              "spearman": {m: spearman(*maps[m]) for m in methods},
              "floor": {m: {"edges": spearman(maps[m][0], edges)} for m in methods}}
    return result, maps


def data_across_images(results):
    """Mean and standard deviation over images of ``data_randomization``'s correlations."""
    def stats(values):
        return {"mean": float(np.mean(values)), "sd": float(np.std(values))}
    methods = results[0]["spearman"]
    return {"images": len(results),
            "spearman": {m: stats([r["spearman"][m] for r in results]) for m in methods},
            "floor_edges": {m: stats([r["floor"][m]["edges"] for r in results]) for m in methods}}


def data_figure(result, maps, path):
    """Each method's map on the model (left) and on its shuffled-label twin (right)."""
    from ..plotting import finish, new_figure
    methods = list(maps)
    fig = new_figure(figsize=(3.2, 1.3 * len(methods) + 0.6))
    for r, m in enumerate(methods):
        for c, title in enumerate(("trained", "shuffled labels")):
            ax = fig.add_subplot(len(methods), 2, 2 * r + c + 1)
            ax.imshow(colorize(maps[m][c]))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{m}\nr = {result['spearman'][m]:.2f}", fontsize=7)
    fig.suptitle(f"Data randomization (Adebayo et al. 2018): {result['target_name']}", fontsize=9)
    return finish(fig, path)
