"""The hierarchy of a trained network, measured: what the units of each layer detect.

    probes.py     the probe images, and each unit's peak over positions
    rule.py       the labelling rule (its definition is that module's docstring), selectivity
    parts.py      named part detectors
    figure.py     the figure
    units.py      everything for a network and its random copy, and what the command reports
    __main__.py   python -m minicnn.hierarchy
"""
from .figure import block_examples, figure
from .parts import LOCALIZED, localization, named_part_detectors, part_classes
from .probes import GRATING_PERIODS, HELD_OUT_SEED, ORIENTATIONS, PROBES_PER_KIND, conv_layers, make_probes, peaks
from .rule import (LABELS, NULL_QUANTILE, SELECTIVITY, STRUCTURE, label_units, profile, selectivity, tuning,
                   tuning_null, vector_strength)
from .units import JUMBLED_PER_CLASS, TUNING_NULL_COPIES, analyze, held_out, held_out_images, measure, run, summary, tuning_nulls

__all__ = ["GRATING_PERIODS", "HELD_OUT_SEED", "JUMBLED_PER_CLASS", "LABELS", "LOCALIZED", "NULL_QUANTILE",
           "ORIENTATIONS", "PROBES_PER_KIND", "SELECTIVITY", "STRUCTURE", "TUNING_NULL_COPIES", "analyze",
           "block_examples", "conv_layers", "figure", "held_out", "held_out_images", "label_units", "localization", "make_probes", "measure",
           "named_part_detectors", "part_classes", "peaks", "profile", "run", "selectivity", "summary", "tuning",
           "tuning_null", "tuning_nulls", "vector_strength"]
