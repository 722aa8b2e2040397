"""Feature visualization: what input makes a channel fire?

Activation maximization by gradient ascent on the input image, as Lucid does it, every
gradient written out:

    objectives.py   what is maximized, on which layers; objectives add up (diversity, L2, TV)
    param.py        how the optimized numbers become pixels (plain, or Lucid's Fourier space)
    transforms.py   random jitter, scale and rotation, with their adjoints
    render.py       the loop that wires them together with Adam (minicnn.optim)
    __main__.py     python -m minicnn.visualize LAYER[:CHANNEL]
"""
from . import objectives, transforms
from .param import PARAMS, FourierParam, PixelParam
from .render import channel_activations, grid_image, parse_channels, render

__all__ = ["FourierParam", "PARAMS", "PixelParam", "channel_activations", "grid_image", "objectives",
           "parse_channels", "render", "transforms"]
