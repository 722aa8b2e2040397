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
from .files import atomic_write, regular_file


NEUTRAL_GREY = (128, 128, 128)   # what transparent pixels are composited onto


def min_side(input_size):
    """The smallest image side accepted: 1/8 of the model's input, and never under 16 px."""
    return max(16, input_size // 8)


def _to_rgb(img):
    """Any Pillow mode -> 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ImageError("the image has NaN or infinite pixels (a float image with holes): "
                             "fill them before explaining it")
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
    regular_file(path, ImageError, "an image file")
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
    except ImageError as e:
        raise ImageError(f"{path}: {e}") from None
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


def load_image(image, size):
    """An image -> RGB pixels (3, size, size), float32 in [0, 1].

    ``image`` may be a path (any file Pillow reads), a Pillow image, an (H, W, 3) or (H, W)
    uint8 array (0..255, as Pillow and most image libraries give them), or a (3, H, W) float
    array already in [0, 1] (minicnn's own pixels). Anything else, or a float array outside
    [0, 1] (pixels in 0..255 passed as floats would give logits in the thousands), is an
    ``ImageError``. The shorter side is resized to ``size`` and the centre cropped.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 8 <= size <= 4096:
        raise ImageError(f"the image size must be a whole number of pixels from 8 to 4096, not {size!r}")
    name = "image"
    if isinstance(image, (str, os.PathLike)):
        name = os.fspath(image)
        img = open_image(name)
    elif isinstance(image, Image.Image):
        try:
            image.load()        # a lazily opened image decodes here: a truncated one fails here
            img = _to_rgb(image)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise ImageError(f"the PIL image cannot be decoded: corrupt or truncated "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    elif isinstance(image, np.ndarray):
        if image.size == 0:
            raise ImageError(f"an empty array {image.shape} is not an image")
        if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
            img = _to_rgb(Image.fromarray(image))
        elif image.dtype.kind == "f" and image.ndim == 3 and image.shape[0] == 3:
            if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
                raise ImageError("a float image must hold RGB values in [0, 1] (divide 0..255 pixels by 255)")
            if image.shape[1:] == (size, size):
                return np.ascontiguousarray(image, dtype=np.float32)
            img = Image.fromarray(np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8))
        else:
            raise ImageError(f"an array image must be (H, W, 3) uint8 or (3, H, W) float in [0, 1], not "
                             f"{image.shape} {image.dtype}")
    else:
        raise ImageError(f"cannot read an image from a {type(image).__name__}: give a path, a PIL image or an array")
    smallest = min_side(size)
    if min(img.size) < smallest:
        raise ImageError(f"{name}: {img.size[0]}x{img.size[1]} is too small "
                         f"(at least {smallest} pixels on each side for a {size}x{size} model)")
    pixels = np.asarray(fit(img, size), dtype=np.float32) / 255.0   # (size, size, 3)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def is_batch(images):
    """A list or tuple of images, or an (N, 3, H, W) array, rather than one image."""
    return isinstance(images, (list, tuple)) or getattr(images, "ndim", 0) == 4


def load_images(images, size):
    """One image or a list of them -> pixels (N, 3, size, size); see ``load_image``."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        images = list(images)
    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise ImageError("no images given")
    return np.stack([load_image(image, size) for image in images])


def _uint8(rgb):
    if rgb.dtype == np.uint8:                      # already a picture's bytes
        return rgb
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def hwc_uint8(pixels):
    """Pixels (N, 3, H, W) floats in [0, 1] -> (N, H, W, 3) uint8: what a picture file holds,
    a quarter of the bytes (what the atlas's workers send back)."""
    return _uint8(np.asarray(pixels).transpose(0, 2, 3, 1))


def save_png(path, rgb):
    """Write an (H, W, 3) image, floats in [0, 1] or uint8, atomically (minicnn.files)."""
    with atomic_write(path, suffix=".png") as tmp:
        Image.fromarray(_uint8(rgb)).save(tmp, format="PNG")


def save_jpeg(path, rgb, quality=90):
    """Write an (H, W, 3) image (floats in [0, 1] or uint8) as a JPEG, atomically: for photographs and
    pictures of them (the atlas's dataset examples), a fifth of a PNG's bytes."""
    with atomic_write(path, suffix=".jpg") as tmp:
        Image.fromarray(_uint8(rgb)).save(tmp, format="JPEG", quality=quality)


def save_gif(path, frames, duration=80):
    """Write (H, W, 3) float frames in [0, 1] as a looping animation, atomically."""
    images = [Image.fromarray(_uint8(f)) for f in frames]
    with atomic_write(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
