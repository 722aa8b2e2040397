"""What every minicnn command shares: the model options and the one-line error contract.

A command given bad input (missing or corrupt file, unknown layer or class, bad weights, no
GPU) prints one line, ``error: ...``, on stderr and exits with status 2: no traceback.
"""
import functools
import sys

from .backend import DeviceError
from .images import ImageError
from .weights import WeightsError


class UsageError(Exception):
    """Bad command-line input that argparse cannot catch (an unknown class name, ...)."""


KNOWN_ERRORS = (ImageError, WeightsError, DeviceError, UsageError)


def add_model_options(parser):
    from .models import DEFAULT, MODELS
    parser.add_argument("--model", default=DEFAULT, choices=list(MODELS) + ["vgg19"],
                        help="world: objects made of parts, 64 px, shipped with minicnn (default); "
                             "shapes: the 32 px shapes model, also shipped; "
                             "vgg19: ImageNet VGG19 (downloaded and converted on first use)")
    parser.add_argument("--weights", metavar="FILE",
                        help="a minicnn weight file (overrides --model)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quiet", action="store_true", help="no progress bars or notes")


def load_model_from_args(args):
    from .backend import check_device
    from .weights import load_model
    check_device(args.device)
    return load_model(args.model, args.weights, quiet=args.quiet).to(args.device)


def check_outdir(path):
    """Refuse an output folder before any work: missing, or one where no file can be created
    (tried with a temporary file, removed at once: /proc passes os.access but takes no files)."""
    import os
    import tempfile
    if not os.path.isdir(path):
        raise UsageError(f"--outdir {path}: no such folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".minicnn-", dir=path)
    except OSError:
        raise UsageError(f"--outdir {path}: not writable") from None
    os.close(fd)
    os.remove(probe)


def main_wrapper(main):
    """Run ``main``; turn the known errors into ``error: <message>`` and exit status 2."""
    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except KNOWN_ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            sys.stderr.close()
            sys.exit(0)
    return run
