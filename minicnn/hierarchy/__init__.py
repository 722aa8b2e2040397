"""The hierarchy of a trained network, measured: what the units of each layer detect.

    units.py      probes, peaks, selectivity, the labelling rule, named part detectors, figure
    __main__.py   python -m minicnn.hierarchy
"""
from .units import (HELD_OUT_SEED, LABELS, LOCALIZED, PROBES_PER_KIND, SELECTIVITY, STRUCTURE, analyze,
                    block_examples, conv_layers, figure, label_units, localization, make_probes, measure,
                    named_part_detectors, part_classes, peaks, profile, run, selectivity, summary)

__all__ = ["HELD_OUT_SEED", "LABELS", "LOCALIZED", "PROBES_PER_KIND", "SELECTIVITY", "STRUCTURE", "analyze",
           "block_examples", "conv_layers", "figure", "label_units", "localization", "make_probes", "measure",
           "named_part_detectors", "part_classes", "peaks", "profile", "run", "selectivity", "summary"]
