"""Progress bars, one rule for the whole package.

``tqdm.auto`` draws a widget in Jupyter and text in a terminal. Library functions take
``progress=True/False``; the commands pass ``shown(args.quiet)``: a bar unless --quiet or
stderr is not a terminal (a log file gets no carriage-return clutter).
"""
import contextlib
import sys


def shown(quiet=False):
    """The commands' rule: bars unless ``quiet`` or stderr is not a terminal."""
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def bar(total, desc, enabled=True):
    """A progress bar (``.update(n)``, ``.set_postfix(...)``), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm
    with tqdm(total=total, desc=desc, file=sys.stderr) as b:
        yield b
