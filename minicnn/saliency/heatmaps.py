"""Drawing saliency maps: a perceptual colormap, outliers clipped, overlays, labelled figures.

Maps are drawn with matplotlib's "inferno" (perceptually uniform, readable in greyscale),
scaled from 0 to their 99th percentile, so a handful of extreme pixels (typical of raw
gradients) do not wash out the rest; the overlay tints a greyscale copy of the image by the map.
"""
import numpy as np

from ..plotting import pyplot, save_figure

CLIP_PERCENTILE = 99
TITLES = {"vanilla": "gradient (vanilla)", "smoothgrad": "SmoothGrad", "integrated": "integrated gradients",
          "guided": "guided backprop", "gradcam": "Grad-CAM"}


def normalize(saliency, percentile=CLIP_PERCENTILE):
    """Scale a map to [0, 1]: 0 stays 0, the given percentile and above become 1."""
    top = np.percentile(saliency, percentile)
    if not top > 0:
        top = saliency.max() if saliency.max() > 0 else 1.0
    return np.clip(saliency / top, 0, 1)


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


def method_figure(path, pixels, saliency, method, label, note=None):
    """image | heatmap | overlay, titled with the class and its probability."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    axes[0].imshow(pixels.transpose(1, 2, 0))
    axes[0].set_title("image", fontsize=9)
    axes[1].imshow(colorize(saliency))
    axes[1].set_title(TITLES.get(method, method) + (f" ({note})" if note else ""), fontsize=9)
    axes[2].imshow(overlay(pixels, saliency))
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(label, fontsize=10)
    save_figure(fig, path)


def panel_figure(path, pixels, maps, label):
    """The image and every method's map side by side (heatmaps on top, overlays below)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, len(maps) + 1, figsize=(2.4 * (len(maps) + 1), 5))
    axes[0, 0].imshow(pixels.transpose(1, 2, 0))
    axes[0, 0].set_title("image", fontsize=9)
    axes[1, 0].axis("off")
    for k, (method, saliency) in enumerate(maps.items(), start=1):
        axes[0, k].imshow(colorize(saliency))
        axes[0, k].set_title(TITLES.get(method, method), fontsize=9)
        axes[1, k].imshow(overlay(pixels, saliency))
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle(label, fontsize=10)
    save_figure(fig, path)
