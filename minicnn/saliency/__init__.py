"""Saliency maps: which pixels drove a prediction?

    methods.py    vanilla gradient, SmoothGrad, integrated gradients, guided backprop, Grad-CAM
    sanity.py     the cascading model-randomization test (Adebayo et al. 2018)
    heatmaps.py   drawing the maps: colormap, clipping, overlays, labelled figures
    __main__.py   python -m minicnn.saliency IMG [IMG ...]
"""
from ..classify import resolve_class
from .methods import (METHODS, class_gradient, gradcam, guided, integrated, last_conv_relu, run_method,
                      smoothgrad, upsample_bilinear, vanilla)

__all__ = ["METHODS", "class_gradient", "gradcam", "guided", "integrated", "last_conv_relu",
           "resolve_class", "run_method", "smoothgrad", "upsample_bilinear", "vanilla"]
