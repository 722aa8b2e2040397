"""Saliency maps: which pixels drove a prediction?

    methods.py    vanilla gradient, SmoothGrad, integrated gradients (and its baselines), guided
                  backprop, Grad-CAM, occlusion
    sanity.py     the cascading model-randomization test (Adebayo et al. 2018)
    faithfulness.py   deletion and insertion scores (Petsiuk et al. 2018): which map to believe
    heatmaps.py   drawing the maps: colormap, clipping, overlays, labelled figures
    __main__.py   python -m minicnn.saliency IMG [IMG ...]
"""
from ..classify import resolve_class
from .methods import (BASELINES, METHODS, baseline_image, batch_limit, class_gradient, gradcam, guided, integrated,
                      last_conv_relu, occlusion, run_method, signed_map, smoothgrad, upsample_bilinear, vanilla)

__all__ = ["BASELINES", "METHODS", "baseline_image", "batch_limit", "class_gradient", "gradcam", "guided", "integrated",
           "last_conv_relu", "occlusion", "resolve_class", "run_method", "signed_map", "smoothgrad",
           "upsample_bilinear", "vanilla"]
