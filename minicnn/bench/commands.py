"""``python -m minicnn.bench --commands``: the whole commands a user waits for, side by side
with the same job as a PyTorch + Captum script (``captum_command.py``), each a fresh process,
alternating, wall time and peak memory (the child's own maximum resident set) of each.

    python -m minicnn.saliency photo --weights vgg19.h5 --method M    vs
    python captum_command.py vgg19.pth photo --method M

for M = vanilla, smoothgrad (25 samples), integrated (50 steps from black). VGG19's weights are
random (seeded), written once as a torchvision-layout ``.pth`` by torch and converted by
``python -m minicnn.weights convert``: both sides load the same numbers from a file, as a user
does. Everything lives in a temporary folder (1.2 GB), deleted at the end. Needs torch and captum.
"""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(HERE, "..", "..", "examples", "photos", "chelsea.jpg")
METHODS = ("vanilla", "smoothgrad", "integrated")


# A child's peak resident set (ru_maxrss) starts from the peak of the process that exec'd it,
# so a child started straight from this (large) process would be charged this process's memory.
# A small Python starts it instead and reports its peak: the number is the command's own, plus
# at most the launcher's ~10 MB.
_LAUNCH = """import os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _timed(argv, env=None):
    """(wall seconds, peak MB) of one child process; its failure is an error."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _LAUNCH, *argv], capture_output=True, env=env)
    wall = time.perf_counter() - t0
    err = done.stderr.decode(errors="replace")
    code, maxrss = (int(v) for v in done.stdout.split()) if done.returncode == 0 else (done.returncode, 0)
    if code != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed:\n{err[-2000:]}")
    return wall, maxrss / 1024


def _weights(tmp):
    """A random VGG19 as torchvision's .pth (by torch) and as minicnn's file (converted)."""
    import torch
    from ..vgg19 import vgg19
    net = vgg19(seed=0)
    state, k = {}, 0
    for i, layer in enumerate(net.layers):      # torchvision's keys: features.N, classifier.3K
        if layer.kind in ("conv", "linear"):
            key = f"features.{i}" if layer.kind == "conv" else f"classifier.{3 * k}"
            k += layer.kind == "linear"
            state[key + ".weight"] = torch.from_numpy(np.ascontiguousarray(layer.w))
            state[key + ".bias"] = torch.from_numpy(np.ascontiguousarray(layer.b))
    pth, h5 = os.path.join(tmp, "vgg19-random.pth"), os.path.join(tmp, "vgg19-random.h5")
    torch.save(state, pth)
    subprocess.run([sys.executable, "-m", "minicnn.weights", "convert", pth, "-o", h5], check=True,
                   stdout=subprocess.DEVNULL)
    return pth, h5


def bench_commands(rounds=3, methods=METHODS, photo=PHOTO):
    """Print one row per method: medians (and ranges) of wall time and peak memory of both
    commands, and their ratio. Returns {method: {"minicnn": [(s, MB), ...], "captum": [...]}}."""
    import importlib.util
    from ..errors import UsageError
    if not os.path.isfile(photo):
        raise UsageError(f"--commands needs the example photos of a clone of minicnn ({photo} is not there)")
    missing = [m for m in ("torch", "captum") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"--commands: {', '.join(missing)} not installed (pip install torch captum); nothing timed")
        return {}
    print(f"whole commands, VGG19 (random weights) on {os.path.basename(photo)}, CPU ({os.cpu_count()} cores); "
          f"each a fresh process, {rounds} alternating round(s) after a warm-up of each; medians (range)")
    print(f"{'method':11s} {'minicnn s':>18s} {'captum s':>18s} {'ratio':>6s} {'minicnn MB':>11s} {'captum MB':>10s}",
          flush=True)
    env = dict(os.environ, MINICNN_KEEP_MEMORY="1")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        pth, h5 = _weights(tmp)
        for method in methods:
            ours = [sys.executable, "-m", "minicnn.saliency", photo, "--weights", h5, "--method", method,
                    "--outdir", tmp, "--quiet"]
            theirs = [sys.executable, os.path.join(HERE, "captum_command.py"), pth, photo, "--method", method,
                      "--outdir", tmp]
            _timed(ours, env), _timed(theirs)                       # warm-up: the file cache, imports
            runs = {"minicnn": [], "captum": []}
            for _ in range(rounds):
                runs["minicnn"].append(_timed(ours, env))
                runs["captum"].append(_timed(theirs))
            results[method] = runs
            (a, am), (b, bm) = (np.median(np.array(runs[k]), axis=0) for k in runs)
            ratios = [x[0] / y[0] for x, y in zip(runs["minicnn"], runs["captum"])]

            def span(k):
                s = [r[0] for r in runs[k]]
                return f"{np.median(s):6.2f} ({min(s):.1f}-{max(s):.1f})"
            print(f"{method:11s} {span('minicnn'):>18s} {span('captum'):>18s} {np.median(ratios):6.2f} "
                  f"{am:11.0f} {bm:10.0f}", flush=True)
    return results
