"""Drawing saliency maps: a perceptual colormap, outliers clipped, signed views, overlays,
labelled figures with colorbars (Captum's ``visualize_image_attr`` is the model).

The absolute map is drawn with matplotlib's "inferno" (perceptually uniform, readable in
greyscale), scaled from 0 to its 99th percentile, so a handful of extreme pixels (typical of raw
gradients) do not wash out the rest. The signed map (evidence for the class in red, against it
in blue) uses the diverging "RdBu_r" colormap, symmetric about 0 and scaled to the 99th
percentile of its absolute values. Every heatmap has a colorbar and says its scaling rule; the
overlay tints a greyscale copy of the image by the absolute map.
"""
import numpy as np

from ..plotting import finish, subplots

CLIP_PERCENTILE = 99
TITLES = {"vanilla": "gradient (vanilla)", "smoothgrad": "SmoothGrad", "integrated": "integrated gradients",
          "guided": "guided backprop", "gradcam": "Grad-CAM", "occlusion": "occlusion"}
SCALE_NOTE = "scaled to the 99th percentile"


def settings(result):
    """The settings that changed a method's answer (``result.settings``), for a figure's title."""
    s = result.settings
    if result.method == "smoothgrad":
        return f"{s['samples']} samples" + (f", noise {s['noise']:g}" if "noise" in s else ", given noise")
    if result.method == "integrated":
        return f"{s['steps']} steps, {s['baseline']} baseline"
    if result.method == "gradcam":
        return f"layer {s['layer']}"
    if result.method == "occlusion":
        fill = "grey" if s["fill"] == 0.5 else f"fill {s['fill']:g}"
        return f"patch {s['patch']} px, stride {s['stride']} px, {fill}"
    return ""


def scale_top(values, percentile=CLIP_PERCENTILE):
    """The value a map is scaled to: its percentile (its maximum if that is 0, 1 if all is 0)."""
    top = float(np.percentile(values, percentile))
    return top if top > 0 else (float(np.max(values)) or 1.0)


def normalize(saliency, percentile=CLIP_PERCENTILE):
    """Scale a map to [0, 1]: 0 stays 0, the given percentile and above become 1."""
    return np.clip(saliency / scale_top(saliency, percentile), 0, 1)


def colorize(saliency):
    """(H, W) map -> (H, W, 3) RGB in [0, 1] with the inferno colormap."""
    from matplotlib import colormaps
    return colormaps["inferno"](normalize(saliency))[..., :3]


def overlay(pixels, saliency):
    """The image in grey, tinted by the coloured map where the map is strong."""
    image = pixels.transpose(1, 2, 0)                         # (H, W, 3)
    grey = image.mean(axis=2, keepdims=True) * np.ones(3)
    alpha = normalize(saliency)[..., None] * 0.8
    return np.clip(grey * 0.6 * (1 - alpha) + colorize(saliency) * alpha, 0, 1)


def signed_limit(signed, percentile=CLIP_PERCENTILE):
    """The symmetric colour limit of a signed map: the percentile of its absolute values."""
    return scale_top(np.abs(signed), percentile)


def _heat(fig, ax, saliency):
    im = ax.imshow(saliency, cmap="inferno", vmin=0, vmax=scale_top(saliency))
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=6)
    return im


def _signed(fig, ax, signed):
    top = signed_limit(signed)
    im = ax.imshow(signed, cmap="RdBu_r", vmin=-top, vmax=top)
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=6)
    return im


def method_figure(path, pixels, saliency, method, label, note=None, signed=None):
    """image | |map| | signed map | overlay, titled with the class, its probability and the
    method's settings; colorbars on both maps."""
    panels = 4 if signed is not None else 3
    fig, axes = subplots(1, panels, figsize=(3.2 * panels, 3.5))
    axes[0].imshow(pixels.transpose(1, 2, 0))
    axes[0].set_title("image", fontsize=9)
    _heat(fig, axes[1], saliency)
    axes[1].set_title(f"|{TITLES.get(method, method)}|\n{SCALE_NOTE}", fontsize=8)
    if signed is not None:
        _signed(fig, axes[2], signed)
        axes[2].set_title("signed: red for, blue against\nsymmetric, 99th pct of |.|", fontsize=8)
    axes[-1].imshow(overlay(pixels, saliency))
    axes[-1].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"{label}; {TITLES.get(method, method)}" + (f" ({note})" if note else ""), fontsize=10)
    return finish(fig, path)


def panel_figure(path, pixels, maps, label, signed=None, notes=None):
    """The image and every method's map side by side: absolute maps on top, signed maps (when
    given) in the middle, overlays below; rows labelled, settings under each method's name."""
    rows = [("|map|", "abs")] + ([("signed", "signed")] if signed else []) + [("overlay", "overlay")]
    fig, axes = subplots(len(rows), len(maps) + 1, figsize=(2.7 * (len(maps) + 1), 2.6 * len(rows)))
    axes[0, 0].imshow(pixels.transpose(1, 2, 0))
    axes[0, 0].set_title("image", fontsize=9)
    for r, (name, kind) in enumerate(rows):
        if r:
            axes[r, 0].axis("off")
        axes[r, 0].text(-0.15, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center",
                        ha="right", fontsize=9)
        for k, (method, saliency) in enumerate(maps.items(), start=1):
            ax = axes[r, k]
            if kind == "abs":
                _heat(fig, ax, saliency)
                note = (notes or {}).get(method)
                ax.set_title(TITLES.get(method, method) + (f"\n{note}" if note else ""), fontsize=8)
            elif kind == "signed":
                _signed(fig, ax, signed[method])
            else:
                ax.imshow(overlay(pixels, saliency))
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(f"{label}. |map|: {SCALE_NOTE}; signed: red for the target (class or unit), blue against, "
                 "symmetric about 0", fontsize=9)
    return finish(fig, path)
