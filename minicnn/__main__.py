"""``python -m minicnn`` (or the ``minicnn`` command): the list of commands, and a way to run them.

    python -m minicnn                       # what there is
    python -m minicnn saliency IMG ...      # the same as python -m minicnn.saliency IMG ...
    python -m minicnn --version
"""
import runpy
import sys

from . import __version__

COMMANDS = {
    "predict": "the model's top classes for each image",
    "saliency": "saliency maps (six methods), the sanity check, deletion/insertion scores",
    "visualize": "feature visualization: what makes a channel fire",
    "curves": "curve detectors, tested against randomly initialised copies",
    "hierarchy": "what the units of each layer detect, measured",
    "atlas": "a browsable site of every unit of a network (here, local processes or a Dask cluster)",
    "shortcut": "a network that cheats, and the saliency maps that catch it",
    "train": "train a built-in model from scratch",
    "weights": "download, convert and inspect weight files",
    "bench": "timings, side by side with PyTorch",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"minicnn {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(f"minicnn {__version__}: a readable CNN that shows what a network sees\n\n"
              "usage: minicnn COMMAND [options]   (or python -m minicnn.COMMAND [options])\n")
        for name, what in COMMANDS.items():
            print(f"  {name:10s} {what}")
        print("\nminicnn COMMAND --help shows a command's options and examples.")
        return 0
    command = argv[0]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    sys.argv = [f"minicnn {command}"] + argv[1:]
    runpy.run_module(f"minicnn.{command}", run_name="__main__", alter_sys=True)
    return 0


def _main():
    try:
        return main()
    except BrokenPipeError:      # piped into head and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(_main())
