"""Reading images the way learners have them, and writing the pictures minicnn makes.

``load_image`` accepts whatever Pillow reads (JPEG, PNG, BMP, GIF, WebP, TIFF, ...) and returns
RGB pixels in [0, 1] at the model's input size: EXIF orientation applied; greyscale, palette,
CMYK, 16-bit and float images converted; transparency composited on neutral grey; the shorter
side resized to the input size, then the centre cropped (an image already at the input size
passes unchanged). Anything it cannot use is an ``ImageError`` with a one-line reason.
"""
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


from .errors import ImageError
from .files import atomic_write


NEUTRAL_GREY = (128, 128, 128)   # what transparent pixels are composited onto


def min_side(input_size):
    """The smallest image side accepted: 1/8 of the model's input, and never under 16 px."""
    return max(16, input_size // 8)


def _to_rgb(img):
    """Any Pillow mode -> 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F":
            top = max(a.max(), 1.0) if a.max() > 1.0 else 1.0
        a = np.clip(a / top * 255.0, 0, 255).astype(np.uint8)
        img = Image.fromarray(a)  # 2-D uint8: mode "L"
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, NEUTRAL_GREY + (255,))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, RGBA -> RGB


def open_image(path):
    """Open, fully decode and orient an image; returns an 8-bit RGB Pillow image."""
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; treat it as the error it is
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()  # decode now: a truncated or corrupt file fails here, not later
                img = ImageOps.exif_transpose(img)
                return _to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: too many pixels (over Pillow's limit of "
                         f"{Image.MAX_IMAGE_PIXELS} pixels, a possible decompression bomb)") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: corrupt or truncated image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def fit(img, size):
    """Resize the shorter side to ``size`` (bicubic), then crop the centre size x size."""
    W, H = img.size
    if (W, H) == (size, size):
        return img
    scale = size / min(W, H)
    new = (max(size, round(W * scale)), max(size, round(H * scale)))
    img = img.resize(new, Image.BICUBIC, reducing_gap=None)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return img.crop((left, top, left + size, top + size))


def load_image(path, size):
    """An image file -> RGB pixels (3, size, size), float32 in [0, 1]."""
    img = open_image(path)
    smallest = min_side(size)
    if min(img.size) < smallest:
        raise ImageError(f"{path}: {img.size[0]}x{img.size[1]} is too small "
                         f"(at least {smallest} pixels on each side for a {size}x{size} model)")
    pixels = np.asarray(fit(img, size), dtype=np.float32) / 255.0   # (size, size, 3)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _uint8(rgb):
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(path, rgb):
    """Write an (H, W, 3) float image in [0, 1] atomically (minicnn.files)."""
    with atomic_write(path, suffix=".png") as tmp:
        Image.fromarray(_uint8(rgb)).save(tmp, format="PNG")


def save_gif(path, frames, duration=80):
    """Write (H, W, 3) float frames in [0, 1] as a looping animation, atomically."""
    images = [Image.fromarray(_uint8(f)) for f in frames]
    with atomic_write(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
