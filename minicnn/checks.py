"""Checks of numbers from outside (an API call, a command line): the one place that says what
each option may be, so that the commands and the Python API refuse alike. Each raises
``UsageError`` naming the option, the value given and the range."""
import math
import numbers

from .errors import UsageError

SEED_MAX = 2 ** 32 - 1


def digits(text):
    """True for a non-empty run of ASCII digits only: str.isdigit() also takes superscripts
    ("³"), which int() then refuses with a traceback."""
    return bool(text) and text.isascii() and text.isdigit()


def whole(name, value, lo, hi, none_ok=False):
    """``value`` as an int in lo..hi (a bool, a float or a string is refused)."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{name} must be a whole number from {lo} to {hi}, not {value!r}")
    if not lo <= value <= hi:
        raise UsageError(f"{name} {value} is outside {lo}..{hi}")
    return int(value)


def real(name, value, lo, hi, low_open=False):
    """``value`` as a finite float in [lo, hi] (or (lo, hi] with ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UsageError(f"{name} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value) or not (lo < value if low_open else lo <= value) or value > hi:
        raise UsageError(f"{name} {value!r} is outside {'(' if low_open else '['}{lo:g}, {hi:g}]")
    return value
