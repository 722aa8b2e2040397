"""A planted shortcut: a network that cheats on a watermark, and the saliency maps that catch it.

    experiment.py   the cue, the cheat world, training, accuracies, map shares, the figure
    __main__.py     python -m minicnn.shortcut
"""
from .experiment import (CUE_AT, CUE_CLASS, CUE_PROB, CUE_SIZE, accuracy_report, cheat_world, cue_mask,
                         cue_patch, experiment, figure, map_shares, plant, predict, run, saliency_shares,
                         train_cheater)

__all__ = ["CUE_AT", "CUE_CLASS", "CUE_PROB", "CUE_SIZE", "accuracy_report", "cheat_world", "cue_mask",
           "cue_patch", "experiment", "figure", "map_shares", "plant", "predict", "run", "saliency_shares",
           "train_cheater"]
