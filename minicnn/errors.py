"""The errors that reach a user as one line.

Every error a user can cause (a bad file, name, number or device) is a ``MinicnnError``; a
command catches exactly this base class and prints ``error: <message>`` (``minicnn.cli``).
Anything else is a bug in minicnn and keeps its traceback.
"""


class MinicnnError(Exception):
    """Bad input from outside: the message says what is wrong and what to do."""


class ImageError(MinicnnError):
    """An image file that is missing, unreadable or unusable."""


class WeightsError(MinicnnError):
    """A weight file is missing, unreadable or does not describe a valid model."""


class DeviceError(MinicnnError, RuntimeError):
    """The requested device (``cuda``) cannot be used on this machine."""


class UsageError(MinicnnError, ValueError):
    """A bad command-line or API argument: an unknown class or layer name, a number out of range."""
