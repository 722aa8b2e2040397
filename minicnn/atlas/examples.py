"""The atlas's pictures made from data: dataset examples and first-layer filters, and the
folder of images they come from (``--images DIR``).

A folder is data from a stranger: only its regular files with an image suffix are read (not
its subfolders, and not links, which could point anywhere), at most MAX_IMAGES of them, each
checked by ``minicnn.images.load_image`` (size, decompression bombs, corrupt files): one bad
image stops the run before any work, naming the file, as the saliency command does.
"""
import hashlib
import os

import numpy as np
from PIL import Image, ImageDraw

from ..errors import ImageError, UsageError
from ..images import hwc_uint8, load_image

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGES = 1000       # images read from a folder (the first, by name)
MAX_ENTRIES = 100_000   # entries of the folder looked at
TILE = 96               # px of each picture in an examples strip, at most (smaller images: their own size)


def sample_photos():
    """The folder of scikit-image's sample photos (``skimage.data``; CC0 or public domain, as
    its data README says) when scikit-image is installed, else None: the dataset examples of a
    model without a world of its own, when no --images are given."""
    try:
        import skimage.data
    except ImportError:
        return None
    folder = getattr(skimage.data, "data_dir", None)
    return folder if folder and os.path.isdir(folder) else None


def read_folder(folder, size, skip_bad=False):
    """The images of ``folder`` -> ((N, size, size, 3) uint8, their file names, a SHA-256 of
    the pixels); refused with one line if it is not a folder or holds no image. One image
    that cannot be used stops it, naming the file; with ``skip_bad`` (a package's sample
    photos, not the user's) such a file is left out instead."""
    if not os.path.isdir(folder):
        raise UsageError(f"--images {folder}: not a folder (give a folder of images)")
    names = []
    try:
        with os.scandir(folder) as entries:
            for k, entry in enumerate(entries):
                if k >= MAX_ENTRIES:
                    raise UsageError(f"--images {folder}: over {MAX_ENTRIES:,} entries; give a smaller folder")
                if entry.name.lower().endswith(SUFFIXES) and not entry.is_symlink() and entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
    except OSError as e:
        raise UsageError(f"--images {folder}: cannot read it ({e.strerror})") from None
    pixels, kept = [], []
    for name in sorted(names)[:MAX_IMAGES]:
        try:
            pixels.append(load_image(os.path.join(folder, name), size))                 # each checked
        except ImageError:
            if not skip_bad:
                raise
            continue
        kept.append(name)
    if not kept:
        raise UsageError(f"--images {folder}: no image files there ({', '.join(SUFFIXES)}; links and subfolders "
                         "are not read)")
    names, pixels = kept, np.stack(pixels)
    images = hwc_uint8(pixels)
    return images, names, hashlib.sha256(images.tobytes()).hexdigest()


def _fit(picture, side):
    """A PIL image resized to ``side`` px: nearest-neighbour when enlarging (no invented detail)."""
    method = Image.NEAREST if picture.width <= side else Image.LANCZOS
    return picture.resize((side, side), method)


def example_strip(images, top, rf):
    """One picture of a unit's dataset examples: for each (image index, row, col, firing) of
    ``top``, the whole image with the receptive field of the peak unit outlined in red, above
    that field cropped and enlarged. ``images``: (N, H, W, 3) uint8; ``rf``: (size, stride,
    offset) of the layer. (H, W, 3) uint8."""
    size, stride, offset = rf
    tile = min(TILE, images.shape[1])
    strip = Image.new("RGB", (len(top) * (tile + 4) - 4, 2 * tile + 4), (255, 255, 255))
    for k, (n, i, j, _) in enumerate(top):
        picture = Image.fromarray(images[n])
        H, W = images[n].shape[:2]
        y0, x0 = offset + i * stride, offset + j * stride
        box = (max(0, x0), max(0, y0), min(W, x0 + size), min(H, y0 + size))
        crop = _fit(picture.crop(box), tile)
        whole = _fit(picture, tile)
        draw = ImageDraw.Draw(whole)
        scale = tile / W
        draw.rectangle([box[0] * scale, box[1] * scale, box[2] * scale - 1, box[3] * scale - 1], outline=(230, 0, 0))
        strip.paste(whole, (k * (tile + 4), 0))
        strip.paste(crop, (k * (tile + 4), tile + 4))
    return np.asarray(strip)


def filter_image(w, channel_order="RGB", scale=16):
    """A first-layer filter (3, kh, kw) as colours: grey is 0, each channel scaled by the
    filter's largest |weight|, shown in RGB order whatever the model's input order (HED's
    trunk reads BGR). (kh*scale, kw*scale, 3) uint8."""
    w = np.asarray(w, np.float64)
    if channel_order == "BGR":
        w = w[::-1]
    rgb = 0.5 + 0.5 * w / max(np.abs(w).max(), 1e-12)
    rgb = (rgb.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    return rgb.repeat(scale, axis=0).repeat(scale, axis=1)
