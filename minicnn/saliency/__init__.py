"""Saliency maps: which pixels drove a prediction?

    targets.py    what a map explains: a class, or a unit (a channel or a neuron of a layer)
    result.py     Saliency: what every method returns (the map, the signed map, the attribution)
    methods.py    vanilla gradient, SmoothGrad, integrated gradients (and its baselines), guided
                  backprop, Grad-CAM, occlusion
    sanity.py     the cascading model-randomization test (Adebayo et al. 2018)
    faithfulness.py   deletion and insertion scores (Petsiuk et al. 2018): which map to believe
    heatmaps.py   drawing the maps: colormap, clipping, overlays, labelled figures
    __main__.py   python -m minicnn.saliency IMG [IMG ...]
"""
from ..classify import resolve_class
from .methods import (BASELINES, METHODS, baseline_image, batch_limit, class_gradient, gradcam, guided, integrated,
                      last_conv_relu, occlusion, run_method, smoothgrad, target_gradient,
                      upsample_bilinear, vanilla)
from .result import Saliency
from .targets import Unit, parse_unit

__all__ = ["BASELINES", "METHODS", "baseline_image", "batch_limit", "class_gradient", "gradcam", "guided", "integrated",
           "last_conv_relu", "occlusion", "parse_unit", "resolve_class", "run_method", "Saliency", "smoothgrad",
           "target_gradient", "Unit", "upsample_bilinear", "vanilla"]
