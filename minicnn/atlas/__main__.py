"""Build an atlas: every unit of a network's conv layers, browsable offline as a static site.

Each unit gets a page: its feature visualization, diversity renders, top dataset examples
(their receptive fields, the peak outlined), hierarchy label, curve score and tuning curve,
class selectivity, and its circuit (the units below with the strongest weights into it).
Rerun the same command to finish an interrupted atlas: only what is missing is rendered.

examples:
  python -m minicnn.atlas                                   # every conv layer of the world model
  python -m minicnn.atlas --layers conv3_1 --outdir atlas-conv3_1
  python -m minicnn.atlas --model vgg16-hed --layers conv3_3 --images photos/
  python -m minicnn.atlas --workers 2                       # two local processes
  python -m minicnn.atlas --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster
"""
import os
import sys

from ..cli import ArgumentParser, UsageError, add_model_options, add_seed_option, int_range, load_model_from_args, main_wrapper
from ..progress import shown
from ..weights import load_model
from .build import BATCH, DIVERSITY, HELD_OUT, STEPS, TOP, build

CONNECT_TIMEOUT = 10      # seconds to reach a Dask scheduler


def check_address(address):
    """Refuse, before any connection, an address that is not PROTOCOL://HOST:PORT (a malformed
    one would fail inside Dask's client, with a traceback at exit)."""
    from urllib.parse import urlsplit
    usage = f"--scheduler {address[:60]!r}: give an address such as tcp://HOST:8786"
    if len(address) > 200:
        raise UsageError(usage)
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        raise UsageError(usage) from None
    if parts.scheme not in ("tcp", "tls", "ucx") or not parts.hostname or port is None or not 0 < port < 65536 \
            or parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(usage)


def connect(address, timeout=None):
    """A ``distributed.Client`` of the scheduler at ``address``, or one line saying why not."""
    try:
        from distributed import Client
    except ImportError:
        raise UsageError('--scheduler needs dask.distributed: pip install "minicnn[cluster]"') from None
    check_address(address)
    timeout = timeout or CONNECT_TIMEOUT
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise UsageError(f"--scheduler {address}: cannot reach a Dask scheduler there within {timeout} s "
                         f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def _main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.atlas", description=__doc__)
    add_model_options(parser)
    parser.add_argument("--layers", help="conv layers, comma-separated (default: all): conv3_1,conv4_1 or any alias")
    parser.add_argument("--outdir", default="atlas", help="the site's folder (default atlas/); an atlas there is "
                                                          "finished, not redone")
    parser.add_argument("--images", metavar="DIR", help="a folder of images for the dataset examples (default: "
                                                        "the model's held-out world; for VGG, your photos)")
    parser.add_argument("--steps", type=int_range(1, 100_000), default=STEPS, help=f"steps per render (default {STEPS})")
    parser.add_argument("--size", type=int_range(8, 1024), default=None,
                        help="render side in px (default: the model's input size, at most 128)")
    parser.add_argument("--batch", type=int_range(1, 256), default=BATCH,
                        help=f"channels rendered together in one task (default {BATCH})")
    parser.add_argument("--diversity", type=int_range(0, 16), default=DIVERSITY,
                        help=f"diversity renders per unit (default {DIVERSITY}; 0: none)")
    parser.add_argument("--top", type=int_range(1, 32), default=TOP, help=f"dataset examples per unit (default {TOP})")
    parser.add_argument("--held-out", type=int_range(10, 10_000), default=HELD_OUT,
                        help=f"held-out world images for labels and examples (default {HELD_OUT})")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int_range(1, 256), default=1, help="local worker processes (default 1: here)")
    where.add_argument("--scheduler", metavar="ADDR", help="a Dask scheduler, tcp://HOST:PORT (pip install "
                                                           '"minicnn[cluster]")')
    parser.add_argument("--force", action="store_true", help="rebuild an atlas made with other settings or another model")
    add_seed_option(parser)
    args = parser.parse_args(argv)

    client = connect(args.scheduler) if args.scheduler else None     # before any work
    try:
        log = None if args.quiet else (lambda message: print(message, file=sys.stderr))
        if client is None:
            net = load_model_from_args(args)
        else:                   # the workers' devices matter (dask-cuda's are GPUs), not this machine's
            net = load_model(args.model, args.weights, quiet=args.quiet, log=log)
        name = os.path.basename(args.weights) if args.weights else args.model
        path = build(net, layers=args.layers, outdir=args.outdir, images=args.images, steps=args.steps,
                     size=args.size, seed=args.seed, batch=args.batch, diversity=args.diversity, top=args.top,
                     held_out=args.held_out, device=args.device, workers=args.workers, client=client,
                     force=args.force, model_name=name, progress=shown(args.quiet), log=log)
    finally:
        if client is not None:
            client.close()
    print(os.path.abspath(path))


main = main_wrapper(_main)

if __name__ == "__main__":
    main()
