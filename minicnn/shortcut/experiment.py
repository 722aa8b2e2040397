"""A network that cheats, and the saliency maps that catch it (``python -m minicnn.shortcut``).

Can we trust what a network learned, or does it exploit a pattern nobody noticed? This command
plants such a pattern and watches what happens. It makes a copy of the world (minicnn.world)
in which most images of one class (``--cue-class``, default flower) carry a small **cue** in
the top-left corner — a 6x6 yellow-and-black checker, like a watermark on the photos of one
source — trains the world model's architecture on it from scratch (a few minutes on a CPU),
and reports, on held-out images:

* accuracy on clean images, and on the cue class with and without its cue: a cheater needs it;
* the flip rate: the share of other classes' images that the cue alone, pasted on them,
  turns into the cue class;
* for every saliency method, the share of the map (normalised to sum 1) on the cue's pixels and
  on the object's, over many images (mean and standard deviation), for the cheating model and
  for the honest one (the shipped world model, which never saw the cue);
* a figure: the images, each model's prediction and every method's map, the cue boxed.

    python -m minicnn.shortcut                       # ~5 min on a 2-core CPU
    python -m minicnn.shortcut --train-size 3000 --epochs 2 --json
"""
import numpy as np

from .. import world
from ..models import build

CUE_CLASS = "flower"
CUE_PROB = 0.9          # share of the cue class's training images that carry the cue
CUE_SIZE = 6            # px; the cue covers 36 of the 4096 pixels (0.9%)
CUE_AT = (2, 2)         # its top-left pixel (row, column)


def cue_patch():
    """The cue: a 6x6 checker of 2x2 squares, yellow and black, (3, 6, 6)."""
    rows, cols = np.mgrid[0:CUE_SIZE, 0:CUE_SIZE] // 2
    yellow, black = np.array([1.0, 0.9, 0.0]), np.zeros(3)
    return np.where(((rows + cols) % 2 == 0)[None], yellow[:, None, None], black[:, None, None]).astype(np.float32)


def cue_mask(size=world.SIZE):
    """Where the cue goes: a boolean (size, size) image."""
    mask = np.zeros((size, size), dtype=bool)
    (r, c), s = CUE_AT, CUE_SIZE
    mask[r:r + s, c:c + s] = True
    return mask


def plant(images, which):
    """A copy of ``images`` (N, 3, H, W) with the cue pasted on the images where ``which``."""
    out = images.copy()
    (r, c), s = CUE_AT, CUE_SIZE
    out[np.asarray(which, bool), :, r:r + s, c:c + s] = cue_patch()
    return out


def cheat_world(n, seed, cue_class=CUE_CLASS, prob=CUE_PROB):
    """The world with the cue on a share ``prob`` of ``cue_class``'s images: (images, labels,
    parts, has_cue). Same seed, same data."""
    images, labels, parts = world.make_dataset(n, seed=seed)
    rng = np.random.default_rng(seed + 7)
    has_cue = (labels == world.CLASSES.index(cue_class)) & (rng.random(n) < prob)
    return plant(images, has_cue), labels, parts, has_cue


def train_cheater(train_size=6000, epochs=3, seed=0, cue_class=CUE_CLASS, quiet=True, device="cpu", prob=CUE_PROB,
                  net=None, lr=3e-3, batch=64):
    """A network trained from scratch on the cheat world: by default the world model's
    architecture with the shipped recipe's optimizer and schedule, on a smaller training set;
    ``net`` (untrained) replaces it (the tests train a tiny one)."""
    from ..training import train
    images, labels, _, _ = cheat_world(train_size, seed=10_000 + seed, cue_class=cue_class, prob=prob)
    net = (net or build("world", seed=seed)).to(device)
    train(net, images, labels, epochs=epochs, batch=batch, lr=lr, seed=seed, quiet=quiet)
    return net


def predict(net, images):
    """The predicted class of each image (N, 3, H, W)."""
    from ..classify import classify
    return classify(net, images).argmax(axis=1)


def accuracy_report(net, images, labels, cue_class=CUE_CLASS):
    """Accuracies with and without the cue, and the flip rate, on clean held-out images."""
    k = world.CLASSES.index(cue_class)
    mine = labels == k
    clean = predict(net, images)
    cued = predict(net, plant(images, np.ones(len(images), bool)))
    return {"accuracy_clean": float((clean == labels).mean()),
            "cue_class_accuracy_without_cue": float((clean[mine] == k).mean()),
            "cue_class_accuracy_with_cue": float((cued[mine] == k).mean()),
            "other_classes_accuracy_clean": float((clean[~mine] == labels[~mine]).mean()),
            "flip_rate": float((cued[~mine] == k).mean())}


def map_shares(saliency, parts):
    """Share of each map (N, H, W; normalised to sum 1) on the cue and on the object, and the
    areas they cover: ({"cue": (N,), "object": (N,)}, {"cue": float, "object": (N,)})."""
    total = saliency.reshape(len(saliency), -1).sum(axis=1)
    total = np.where(total > 0, total, 1.0)
    cue, obj = cue_mask(saliency.shape[-1]), (parts > 0) & ~cue_mask(saliency.shape[-1])
    return ({"cue": saliency[:, cue].sum(axis=1) / total,
             "object": (saliency * obj).reshape(len(saliency), -1).sum(axis=1) / total},
            {"cue": float(cue.mean()), "object": obj.reshape(len(obj), -1).mean(axis=1)})


def saliency_shares(net, images, parts, targets, methods, options=None):
    """{method: {"cue": (mean, std), "object": (mean, std)}} of each method's map share."""
    from ..backend import to_device, to_numpy
    from ..saliency import run_method
    out = {}
    pixels = to_device(images, net.device)
    for method in methods:
        saliency = to_numpy(run_method(method, net, pixels, list(map(int, targets)), dict(options or {})).saliency)
        shares, _ = map_shares(saliency, parts)
        out[method] = {where: (float(v.mean()), float(v.std())) for where, v in shares.items()}
    return out


def experiment(cheater, honest, images, labels, parts, cue_class=CUE_CLASS, methods=None, options=None,
               per_method=60):
    """Everything the report says, for the cheating and the honest model. The saliency shares
    are taken on the first ``per_method`` held-out images of the cue class, cue planted, each
    explained for the cue class."""
    from ..saliency import METHODS
    methods = methods or METHODS
    k = world.CLASSES.index(cue_class)
    idx = np.flatnonzero(labels == k)[:per_method]
    cued = plant(images[idx], np.ones(len(idx), bool))
    _, areas = map_shares(np.zeros((len(idx),) + images.shape[2:]), parts[idx])
    report = {"cue_class": cue_class, "cue_area": areas["cue"], "object_area": float(areas["object"].mean()),
              "explained_images": int(len(idx))}
    for name, net in (("cheating", cheater), ("honest", honest)):
        report[name] = accuracy_report(net, images, labels, cue_class)
        report[name]["saliency"] = saliency_shares(net, cued, parts[idx], np.full(len(idx), k), methods, options)
    return report


# ------------------------------------------------------------------------------------------------
# The figure


def figure(cheater, honest, images, labels, path, cue_class=CUE_CLASS, options=None):
    """Two images — one of the cue class with its cue, and the first image of another class
    that the cue, pasted on, turns into the cue class for the cheater — explained by each model
    for its own prediction, every method; cue boxed."""
    from matplotlib.patches import Rectangle

    from ..backend import to_device, to_numpy
    from ..plotting import finish, subplots
    from ..saliency.heatmaps import TITLES, colorize
    from ..classify import classify, softmax
    from ..saliency import METHODS, run_method
    k = world.CLASSES.index(cue_class)
    others = np.flatnonzero(labels != k)
    flipped = others[predict(cheater, plant(images[others], np.ones(len(others), bool))) == k]
    chosen = [int(np.flatnonzero(labels == k)[0]), int(flipped[0] if len(flipped) else others[0])]
    cued = plant(images[chosen], np.ones(2, bool))
    rows = [(name, net, n) for n in range(2) for name, net in (("cheating", cheater), ("honest", honest))]
    fig, axes = subplots(len(rows), len(METHODS) + 1, figsize=(1.9 * (len(METHODS) + 1), 2.1 * len(rows)))
    (r0, c0), s = CUE_AT, CUE_SIZE
    for row, (name, net, n) in enumerate(rows):
        pixels = cued[n:n + 1]
        p = softmax(classify(net, pixels)[0])
        target = int(p.argmax())
        axes[row, 0].imshow(pixels[0].transpose(1, 2, 0), interpolation="nearest")
        axes[row, 0].set_title(f"{name} model: {world.CLASSES[target]} ({p[target]:.0%})\n"
                               f"(true: {world.CLASSES[labels[chosen[n]]]})", fontsize=7)
        for col, method in enumerate(METHODS, start=1):
            saliency = to_numpy(run_method(method, net, to_device(pixels, net.device), [target],
                                           dict(options or {})).saliency[0])
            axes[row, col].imshow(colorize(saliency), interpolation="nearest")
            share = saliency[cue_mask(saliency.shape[-1])].sum() / max(saliency.sum(), 1e-12)
            axes[row, col].set_title(f"{TITLES.get(method, method)}\n{share:.0%} of the map on the cue", fontsize=7)
        for ax in axes[row]:
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), s, s, fill=False, edgecolor="cyan", linewidth=1))
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"A network that cheats: the cue (cyan box) was on 90% of the {cue_class} training images. "
                 f"Maps explain each model's prediction (scaled to their 99th percentile)", fontsize=8)
    fig.tight_layout()
    return finish(fig, path)


def run(cue_class=CUE_CLASS, train_size=6000, epochs=3, n_images=1000, seed=0, device="cpu", quiet=True,
        figure_path=None):
    """Everything ``python -m minicnn.shortcut`` reports: train the cheater, compare it with the
    shipped world model on ``n_images`` held-out images (seed 20000 + seed), and draw the
    figure at ``figure_path`` (when given). Returns the JSON-ready report."""
    from ..weights import load_model
    cheater = train_cheater(train_size, epochs, seed, cue_class, quiet, device)
    honest = load_model("world").to(device)
    images, labels, parts = world.make_dataset(n_images, seed=20_000 + seed)
    report = experiment(cheater, honest, images, labels, parts, cue_class, options={"seed": seed})
    if figure_path is not None:
        figure(cheater, honest, images, labels, figure_path, cue_class, options={"seed": seed})
        report["figure"] = figure_path
    return report
