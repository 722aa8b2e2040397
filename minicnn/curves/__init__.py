"""Curve detectors (Cammarata et al. 2020): is the claim true of a minicnn model?

    stimuli.py    arcs, lines, edges, blanks and noise, drawn at the receptive field
    score.py      responses, the curve score S = K*Z*D*T, the random-copy null, the figure
    __main__.py   python -m minicnn.curves LAYER
"""
from . import stimuli
from .score import (CURVE_THRESHOLD, NOISE_IMAGES, NULL_COPIES, ORIENTATIONS, POLARITIES, RADII, analyze,
                    central_unit,
                    figure, firing_layer, make_stimuli, probe_size, random_copy, responses,
                    score_channels, summary, top_patches, tuning_curves)

__all__ = ["CURVE_THRESHOLD", "NOISE_IMAGES", "NULL_COPIES", "ORIENTATIONS", "POLARITIES", "RADII", "analyze", "central_unit",
           "figure", "firing_layer", "make_stimuli", "probe_size", "random_copy", "responses",
           "score_channels", "stimuli", "summary", "top_patches", "tuning_curves"]
