"""Progress bars, one rule for the whole package.

``tqdm.auto`` draws a widget in Jupyter and text in a terminal. Library functions take
``progress=True/False``; the commands pass ``shown(args.quiet)``: a bar unless --quiet or
stderr is not a terminal (a log file gets no carriage-return clutter).
"""
import sys


def shown(quiet=False):
    """The commands' rule: bars unless ``quiet`` or stderr is not a terminal."""
    return not quiet and sys.stderr.isatty()


def bar(total, desc, enabled=True):
    """A progress bar to use in a ``with``: ``.update(n)``, ``.set_postfix(...)``; when not
    ``enabled`` the same calls do nothing (tqdm's ``disable``), so callers need no checks."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=not enabled)
