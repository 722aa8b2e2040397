"""Errors that reach the user as one line (see minicnn.cli).

They live in a module of their own so that ``python -m minicnn.weights`` (which runs
weights.py as ``__main__``, a second copy of the module) still catches the very classes that
the rest of the package raises.
"""


class WeightsError(Exception):
    """A weight file is missing, unreadable or does not describe a valid model."""
