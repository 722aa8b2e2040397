"""What every minicnn command shares: the model options and the one-line error contract.

A command given bad input (missing or corrupt file, unknown layer or class, bad weights, no
GPU) prints one line, ``error: ...``, on stderr and exits with status 2: no traceback. The
library raises a ``MinicnnError`` (minicnn.errors) for every such input; ``main_wrapper``
turns it into that line. Argparse's own usage errors exit with status 2 too.
"""
import argparse
import errno
import functools
import math
import os
import signal
import sys

from .checks import SEED_MAX
from .errors import MinicnnError, UsageError  # noqa: F401  (UsageError: re-exported for commands)
from .files import OutputError, one_line, scratch_file




class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error contract (a bad option is one line, exit status 2),
    and a --help that shows the command's docstring, examples included, as written."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        if kw.get("description"):
            kw["description"] = kw["description"].replace("``", "").strip()
        super().__init__(*args, **kw)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def int_range(lo, hi):
    """An argparse type: a whole number from lo to hi, checked before any work starts."""
    def integer(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value
    return integer


def float_range(lo, hi, low_open=False):
    """An argparse type: a finite number in [lo, hi] (or (lo, hi] with ``low_open``)."""
    def number(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not (lo < value if low_open else lo <= value) or value > hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {'(' if low_open else '['}{lo:g}, {hi:g}]")
        return value
    return number


def add_seed_option(parser, help="random seed (default 0)"):
    parser.add_argument("--seed", type=int_range(0, SEED_MAX), default=0, help=help)


def add_model_options(parser):
    """--model, --weights, --device and --quiet, the same for every command."""
    from .models import DEFAULT
    parser.add_argument("--model", default=DEFAULT, metavar="NAME",
                        help="world: objects made of parts, 64 px, shipped with minicnn (default); "
                             "shapes: the 32 px shapes model, also shipped; "
                             "vgg19: ImageNet VGG19 (downloaded and converted on first use); "
                             "or the name of a model retrained with python -m minicnn.train --name NAME")
    parser.add_argument("--weights", metavar="FILE",
                        help="a minicnn weight file (overrides --model)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cpu (default) or cuda (needs cupy and an NVIDIA GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def load_model_from_args(args):
    """The network the model options name, on the device they name."""
    from .backend import check_device
    from .weights import load_model
    check_device(args.device)
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
    return load_model(args.model, args.weights, quiet=args.quiet, log=log).to(args.device)


def note_model(net, paths, quiet=False):
    """A built-in model knows its drawn world only: when it is given an image that is not of
    its own size (a photo), say which model answered and how to ask a real one (stderr)."""
    from .models import builtin_of
    spec = builtin_of(net)
    if quiet or spec is None:
        return
    size = net.input_shape[1]
    for path in paths:
        try:
            from PIL import Image
            with Image.open(path) as img:
                shape = img.size
        except Exception:     # already read by load_image; a path that vanished since: no note
            continue
        if shape != (size, size):
            names = ", ".join(spec.world.CLASSES)
            print(f"note: the {spec.name} model answered: it knows {len(spec.world.CLASSES)} drawn objects "
                  f"({names}) at {size}x{size} px, not photos ({os.path.basename(path)[:60]} is "
                  f"{shape[0]}x{shape[1]}); for photos use --model vgg19 (1000 ImageNet classes) or "
                  "--model vgg16-hed with saliency --unit (a real network's units)", file=sys.stderr)
            return


def print_top(image, top):
    """The image's name, then one line per class: probability, name (index)."""
    print(image)
    for t in top:
        print(f"  {t['probability']:6.1%}  {t['name']} ({t['class']})")


def check_outdir(path, option="--outdir"):
    """Make sure an output folder can take files, before any work, and leave nothing behind: an
    existing folder is tried with a temporary file, removed at once (/proc passes os.access but
    takes no files); a missing one is made, tried, and removed again with every parent it
    needed. It is made for good only when the first output is written (``files.atomic_write``),
    so a run refused later leaves no empty folder. Refused with one line otherwise."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path}: exists and is not a folder")
    made = []
    try:
        folder = os.path.abspath(path)
        missing = []
        while not os.path.lexists(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        if not os.path.isdir(folder):
            raise UsageError(f"{option} {path}: cannot create it ({folder} is not a folder)")
        for folder in reversed(missing):
            try:
                os.mkdir(folder)
            except OSError as e:
                raise UsageError(f"{option} {path}: cannot create it ({e.strerror})") from None
            made.append(folder)
        try:
            with scratch_file(path, ".minicnn-"):      # created and removed at once: a write probe
                pass
        except OutputError:
            raise UsageError(f"{option} {path}: not writable") from None
    finally:
        for folder in reversed(made):                 # the probe's folders go again
            try:
                os.rmdir(folder)
            except OSError:
                pass


WRITE_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT)   # stdout cannot take the output


class Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (temporary files) runs first."""


def main_wrapper(main):
    """Run ``main``; turn a MinicnnError into ``error: <message>`` (one line) and exit status 2.
    Ctrl-C and SIGTERM stop it cleanly (temporary files removed) with status 130 / 143."""
    @functools.wraps(main)
    def run(argv=None):
        working = True

        def terminate(signum, frame):
            if working:             # once main has ended, so is the command: nothing to stop
                raise Terminated()
        previous = signal.signal(signal.SIGTERM, terminate) if _main_thread() else None
        try:
            try:
                result = main(argv)
                sys.stdout.flush()  # a full disk under stdout fails here, not at exit, unreported
                return result
            finally:
                working = False     # a SIGTERM from here on would land in the lines below
        except MinicnnError as e:
            print(f"error: {one_line(e)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        except Terminated:
            print("terminated", file=sys.stderr)
            sys.exit(143)
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            sys.stderr.close()
            sys.exit(0)
        except OSError as e:
            if e.errno not in WRITE_ERRORS:
                raise
            sys.stdout = open(os.devnull, "w")      # what is still buffered goes nowhere, quietly
            print(f"error: cannot write the output ({e.strerror}); free some space or send stdout elsewhere",
                  file=sys.stderr)
            sys.exit(2)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    return run


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()
