"""What every minicnn command shares: the model options and the one-line error contract.

A command given bad input (missing or corrupt file, unknown layer or class, bad weights, no
GPU) prints one line, ``error: ...``, on stderr and exits with status 2: no traceback. The
library raises a ``MinicnnError`` (minicnn.errors) for every such input; ``main_wrapper``
turns it into that line. Argparse's own usage errors exit with status 2 too.
"""
import functools
import os
import sys
import tempfile

from .errors import MinicnnError, UsageError  # noqa: F401  (UsageError: re-exported for commands)


def add_model_options(parser):
    """--model, --weights, --device and --quiet, the same for every command."""
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
    """The network the model options name, on the device they name."""
    from .backend import check_device
    from .weights import load_model
    check_device(args.device)
    log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
    return load_model(args.model, args.weights, quiet=args.quiet, log=log).to(args.device)


def print_top(image, top):
    """The image's name, then one line per class: probability, name (index)."""
    print(image)
    for t in top:
        print(f"  {t['probability']:6.1%}  {t['name']} ({t['class']})")


def check_outdir(path):
    """Refuse an output folder before any work: missing, or one where no file can be created
    (tried with a temporary file, removed at once: /proc passes os.access but takes no files)."""
    if not os.path.isdir(path):
        raise UsageError(f"--outdir {path}: no such folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".minicnn-", dir=path)
    except OSError:
        raise UsageError(f"--outdir {path}: not writable") from None
    os.close(fd)
    os.remove(probe)


def main_wrapper(main):
    """Run ``main``; turn a MinicnnError into ``error: <message>`` and exit status 2."""
    @functools.wraps(main)
    def run(argv=None):
        try:
            return main(argv)
        except MinicnnError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        except BrokenPipeError:  # output piped into `head` and the like: stop quietly
            sys.stderr.close()
            sys.exit(0)
    return run
