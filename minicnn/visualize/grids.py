"""Pictures of feature visualizations: a grid of images, and a labelled grid for people."""
import math

import numpy as np


def grid_image(images, gap=2):
    """(N, 3, H, W) -> one (rows*H, cols*W, 3) picture, as square as possible, grey gaps."""
    N, _, H, W = images.shape
    cols = math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    canvas = np.full((rows * (H + gap) - gap, cols * (W + gap) - gap, 3), 0.5, dtype=np.float32)
    for k in range(N):
        r, c = divmod(k, cols)
        canvas[r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = images[k].transpose(1, 2, 0)
    return canvas


def labelled_grid(images, labels, min_tile=128, gap=4):
    """A grid picture for people: each (3, S, S) image enlarged by an integer factor with
    nearest-neighbour copies (no smoothing invents detail) to at least ``min_tile`` px, with its
    label written above it. (H, W, 3) floats in [0, 1]."""
    from PIL import Image, ImageDraw
    factor = max(1, math.ceil(min_tile / images.shape[2]))
    big = images.repeat(factor, axis=2).repeat(factor, axis=3)
    strip = 14                                              # px of label above each tile
    tiles = np.full((len(big), 3, big.shape[2] + strip, big.shape[3]), 1.0, dtype=np.float32)
    tiles[:, :, strip:] = big
    picture = Image.fromarray((grid_image(tiles, gap) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    cols = math.ceil(math.sqrt(len(big)))
    for k, label in enumerate(labels):
        r, c = divmod(k, cols)
        draw.text((c * (tiles.shape[3] + gap) + 2, r * (tiles.shape[2] + gap) + 1), str(label)[:40], fill=(0, 0, 0))
    return np.asarray(picture, dtype=np.float32) / 255
