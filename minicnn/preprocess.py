"""From RGB pixels in [0, 1] to what a network was trained on, and back.

Every model records its preprocessing in its weight file:

    {"channel_order": "RGB" or "BGR", "scale": 1.0 or 255.0, "mean": [3], "std": [3]}

(mean and std in the model's channel order). The model's input is

    input = (pixels[channel order] * scale - mean) / std

so minicnn can always report gradients in *pixel space* — d score / d pixel for RGB pixels in
[0, 1] — whatever the weights' source expects: Keras' VGG19 wants BGR pixels 0..255 minus the
ImageNet mean (no std), torchvision's wants RGB in [0, 1] standardised by mean and std.
"""
from .backend import get_xp


def _order(prep):
    order = prep.get("channel_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise ValueError(f"unknown channel order {order!r}")
    return order


def _stats(prep, xp, dtype):
    mean = xp.asarray(prep.get("mean", [0.0, 0.0, 0.0]), dtype=dtype).reshape(1, 3, 1, 1)
    std = xp.asarray(prep.get("std", [1.0, 1.0, 1.0]), dtype=dtype).reshape(1, 3, 1, 1)
    return mean, std


def preprocess(pixels, prep):
    """pixels (N, 3, H, W), RGB in [0, 1] -> the network's input."""
    xp = get_xp(pixels)
    x = pixels[:, ::-1] if _order(prep) == "BGR" else pixels
    mean, std = _stats(prep, xp, pixels.dtype)
    return (x * pixels.dtype.type(prep.get("scale", 1.0)) - mean) / std


def preprocess_backward(dinput, prep):
    """d score / d input -> d score / d pixels (the chain rule through ``preprocess``)."""
    xp = get_xp(dinput)
    _, std = _stats(prep, xp, dinput.dtype)
    d = dinput * dinput.dtype.type(prep.get("scale", 1.0)) / std
    return xp.ascontiguousarray(d[:, ::-1]) if _order(prep) == "BGR" else d


def deprocess(x, prep):
    """The network's input -> RGB pixels in [0, 1] (inverse of ``preprocess``, for display)."""
    xp = get_xp(x)
    mean, std = _stats(prep, xp, x.dtype)
    pixels = (x * std + mean) / x.dtype.type(prep.get("scale", 1.0))
    return pixels[:, ::-1] if _order(prep) == "BGR" else pixels


# The presets of the weight sources minicnn knows (see research notes in weights/README.md).
KERAS_CAFFE = {"channel_order": "BGR", "scale": 255.0,
               "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]}
TORCHVISION = {"channel_order": "RGB", "scale": 1.0,
               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
SHAPES = {"channel_order": "RGB", "scale": 1.0, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
