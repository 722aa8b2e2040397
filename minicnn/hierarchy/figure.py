"""The hierarchy's figure: label shares per layer, trained vs random, and example units."""
import numpy as np

from .rule import LABELS


# ------------------------------------------------------------------------------------------------
# The figure

COLOURS = {"edge/colour": "#4c72b0", "curve": "#55a868", "texture": "#ccb974", "part": "#dd8452",
           "object": "#c44e52", "unlabelled": "#cccccc", "dead": "#555555"}
STRENGTH = {"edge/colour": lambda u: u["edge"], "curve": lambda u: u["curve"],
            "texture": lambda u: u["texture"] / max(u["texture_scrambled"], 1e-6),
            "part": lambda u: u["part"] / max(u["part_scrambled"], 1e-6),
            "object": lambda u: u["selectivity"], "unlabelled": lambda u: 0.0, "dead": lambda u: 0.0}


def block_examples(result, per_block=3):
    """For the last conv layer of each block: its most common label (dead and unlabelled aside) and
    the ``per_block`` channels that show it most clearly; then the named part detectors."""
    layers = result["layers"]
    last = {}
    for firing in layers:                        # relu3_2 -> block "3": keep the last of each
        last[firing[len("relu"):].split("_")[0]] = firing
    rows = []
    for block, firing in last.items():
        units = layers[firing]
        counts = {name: sum(u["label"] == name for u in units) for name in LABELS[:5]}
        label = max(counts, key=counts.get)
        chosen = sorted((u for u in units if u["label"] == label), key=lambda u: -STRENGTH[label](u))
        rows.append((f"block {block} ({firing}): {label}", firing, [u["channel"] for u in chosen[:per_block]]))
    for part, found in result["named_parts"].items():
        if found.get("layer"):
            rows.append((f"{part} detector{'' if found['named'] else ' (candidate)'} ({found['layer']})",
                         found["layer"], [found["channel"]]))
    return rows


def _profile_axes(ax, summary_):
    names = [entry["layer"] for entry in summary_["layers"]]
    x = np.arange(len(names))
    for offset, which in ((-0.2, "trained"), (0.2, "random")):
        bottom = np.zeros(len(names))
        for label in LABELS:
            share = np.array([entry[which][label] for entry in summary_["layers"]])
            ax.bar(x + offset, share, 0.38, bottom=bottom, color=COLOURS[label],
                   label=label if which == "trained" else None, edgecolor="white", linewidth=0.3)
            bottom += share
    ax.set_xticks(x)
    ax.set_xticklabels([f"{n}\ntrained | random" for n in names], fontsize=6)
    ax.set_ylabel("share of channels")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, ncol=7, loc="lower center", bbox_to_anchor=(0.5, 1.0))


def figure(net, result, summary_, images, path, per_block=3, top=3, vis_steps=128):
    """The layer profile (trained vs random, stacked bars), then one row per block: each
    example channel's feature visualization and the held-out images that excite it most, with
    the receptive field of the strongest unit boxed."""
    from matplotlib.patches import Rectangle

    from ..plotting import finish, new_figure
    from ..visualize import FourierParam, objectives, render
    from ..visualize.transforms import standard_transforms
    rows = block_examples(result, per_block)
    size = net.input_shape[1]
    cols = per_block * (1 + top)
    fig = new_figure(figsize=(cols * 0.95, 3.2 + len(rows) * 1.2))
    grid = fig.add_gridspec(len(rows) + 2, cols, height_ratios=[2.4, 0.5] + [1] * len(rows), hspace=0.5)
    _profile_axes(fig.add_subplot(grid[0, :]), summary_)
    for r, (title, firing, channels) in enumerate(rows, start=2):
        if not channels:
            continue
        vis, _, _ = render(net, objectives.neuron(firing, channels), FourierParam(), steps=vis_steps,
                           size=size, n_images=len(channels), transforms=standard_transforms(size))
        rf_size, stride, offset = net.receptive_field(firing)
        _, h, w = net.output_shape(firing)
        peak, where = result["data_peak"][firing], result["data_where"][firing]
        for k, channel in enumerate(channels):
            unit = next(u for u in result["layers"][firing] if u["channel"] == channel)
            ax = fig.add_subplot(grid[r, k * (1 + top)])
            ax.imshow(vis[k].transpose(1, 2, 0), interpolation="nearest")
            ax.set_title(f"{firing}:{channel} {unit['label']}", fontsize=6)
            ax.set_xticks([]), ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(title.replace(": ", ":\n"), fontsize=6, rotation=0, ha="right", va="center")
            for t, n in enumerate(np.argsort(-peak[:, channel], kind="stable")[:top]):
                ax = fig.add_subplot(grid[r, k * (1 + top) + 1 + t])
                ax.imshow(images[n].transpose(1, 2, 0), interpolation="nearest")
                i, j = divmod(int(where[n, channel]), w)
                ax.add_patch(Rectangle((offset + j * stride - 0.5, offset + i * stride - 0.5), rf_size, rf_size,
                                       fill=False, edgecolor="white", linewidth=1.2))
                ax.add_patch(Rectangle((offset + j * stride - 0.5, offset + i * stride - 0.5), rf_size, rf_size,
                                       fill=False, edgecolor="black", linewidth=0.5))
                ax.set_xlim(-0.5, size - 0.5), ax.set_ylim(size - 0.5, -0.5)
                ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("What the units of each layer detect: the share of each label per layer, trained vs a random "
                 "copy (top);\nexample channels per block: feature visualization, then the held-out images that "
                 "excite them most (receptive field boxed)", fontsize=8)
    return finish(fig, path)
