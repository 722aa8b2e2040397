"""Feature visualization: what input makes a channel fire?

Activation maximization by gradient ascent on the input image, as Lucid does it, every
gradient written out:

    objectives.py   what is maximized, on which layers; objectives add up (diversity, L2, TV)
    param.py        how the optimized numbers become pixels (plain, or Lucid's Fourier space)
    transforms.py   random jitter, scale and rotation, with their adjoints
    render.py       the loop that wires them together with Adam (minicnn.optim), and its ReLU rule
    job.py          one job, checked and run: what the command and minicnn.maximize both call
    grids.py        the pictures: a grid of images, a labelled grid
    __main__.py     python -m minicnn.visualize LAYER[:CHANNEL]
"""
from . import objectives, transforms
from .param import PARAMS, FourierParam, PixelParam
from .grids import grid_image, labelled_grid
from .job import parse_channels, plan, run
from .render import channel_activations, render

__all__ = ["FourierParam", "PARAMS", "PixelParam", "channel_activations", "grid_image", "objectives",
           "labelled_grid", "parse_channels", "plan", "render", "run", "transforms"]
