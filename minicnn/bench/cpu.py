"""CPU timings, side by side with torch, each framework in its own process (see __init__)."""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ..files import atomic_write
from ..gradcheck import rel_error
from .jobs import (JOBS, TARGET_CLASS, TOLERANCE, VIS_CHANNEL, VIS_LAYER, _input, as_numpy, minicnn_jobs,
                   torch_jobs)

def _rss_mb(field):
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    try:  # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _worker(framework, repeat, out_npz):
    """One framework in a fresh process: build, warm up, time each job ``repeat`` times."""
    from ..vgg19 import vgg19
    net, x = vgg19(seed=0), _input()
    # minicnn's frozen, as a loaded VGG19 is (its Winograd filter transforms kept from their second use)
    jobs = minicnn_jobs(net.freeze(), x) if framework == "minicnn" else torch_jobs(net, x)
    base = _rss_mb("VmRSS")
    _reset_peak()
    outputs = {name: as_numpy(job()) for name, job in jobs.items()}  # warm-up; kept for checks
    extra = _rss_mb("VmHWM") - base
    with atomic_write(out_npz, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **outputs)
    times = {name: [] for name in JOBS}
    for _ in range(repeat):
        for name in JOBS:
            t0 = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "base_mb": base, "extra_mb": extra}))


def spawn_worker(framework, worker_args):
    """``python -m minicnn.bench WORKER_ARGS`` in a fresh process; its last line, parsed as JSON.
    A reference framework runs as its users run it: malloc left alone (minicnn.fast.memory's settings
    would speed it up too)."""
    env = dict(os.environ)
    if framework != "minicnn":
        env["MINICNN_KEEP_MEMORY"] = "0"
    done = subprocess.run([sys.executable, "-m", "minicnn.bench", *worker_args], capture_output=True, text=True,
                          env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spawn(framework, repeat, out_npz):
    return spawn_worker(framework, ["--worker", framework, "--repeat", str(repeat), "--out", out_npz])


def bench_cpu(repeat, rounds):
    try:
        import torch
    except ImportError:
        torch = None
    frameworks = ["minicnn"] + (["torch"] if torch is not None else [])
    print(f"VGG19 with random weights (seed 0), batch 1, 224x224, float32, CPU, {os.cpu_count()} cores")
    if torch is not None:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, on the same weights")
    print(f"each framework in its own process, {rounds} rounds alternating them, "
          f"{repeat} timed runs per job and round after a warm-up")
    times = {fw: {name: [] for name in JOBS} for fw in frameworks}
    mem = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for fw in frameworks:
                result = _spawn(fw, repeat, os.path.join(tmp, f"{fw}.npz"))
                for name in JOBS:
                    times[fw][name] += result["times"][name]
                mem[fw] = (result["base_mb"], result["extra_mb"])
            if r == 0 and torch is not None:
                a, b = np.load(os.path.join(tmp, "minicnn.npz")), np.load(os.path.join(tmp, "torch.npz"))
                print("relative L2 difference minicnn vs torch:",
                      ", ".join(f"{name} {rel_error(a[name], b[name]):.1e}" for name in JOBS))
                for name in JOBS:
                    if rel_error(a[name], b[name]) > TOLERANCE[name]:
                        raise SystemExit(f"error: minicnn and torch disagree on {name}; "
                                         "not timing a wrong answer")
    med = {fw: {name: float(np.median(ts)) for name, ts in by_job.items()} for fw, by_job in times.items()}
    print(f"\n{'median seconds':16s} {'minicnn':>9s}" + (f" {'torch':>9s} {'ratio':>6s}" if torch else ""))
    for name in JOBS:
        row = f"{name:16s} {med['minicnn'][name]:9.3f}"
        if torch is not None:
            row += f" {med['torch'][name]:9.3f} {med['minicnn'][name] / med['torch'][name]:6.2f}"
        print(row)
    for label, k in (("MB after build", 0), ("MB extra, peak", 1)):
        row = f"{label:16s} {mem['minicnn'][k]:9.0f}"
        if torch is not None:
            row += f" {mem['torch'][k]:9.0f} {mem['minicnn'][k] / mem['torch'][k]:6.2f}"
        print(row)
    if torch is None:
        print("\n(install torch, e.g. pip install torch==2.13.0, to time it side by side)")
    return med


def bench_methods(device="cpu", samples=25, steps=50, vis_steps=5):
    """Wall time of each saliency method and of a feature-visualization step on VGG19 (random
    weights, one 224x224 image), next to one vanilla map (= forward + backward to the input).
    SmoothGrad and integrated gradients run their samples in batches."""
    from ..visualize import objectives
    from ..backend import synchronize, to_device
    from ..visualize.param import FourierParam
    from ..saliency import METHODS, run_method
    from ..visualize.transforms import standard_transforms
    from ..visualize import render
    from ..vgg19 import vgg19
    net = vgg19(seed=0).freeze().to(device)          # frozen, as a loaded VGG19 is
    net.meta["preprocessing"] = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                                 "std": [0.229, 0.224, 0.225]}
    pixels = to_device(np.random.default_rng(1).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32), device)
    options = {"samples": samples, "steps": steps}
    for method in METHODS:  # warm-up (on the GPU: CuPy compiles each new kernel on first use)
        run_method(method, net, pixels, [TARGET_CLASS], {"samples": 2, "steps": 2})
    times = {}
    for method in METHODS:
        synchronize(device)
        t0 = time.perf_counter()
        run_method(method, net, pixels, [TARGET_CLASS], options)
        synchronize(device)
        times[method] = time.perf_counter() - t0
    render(net, objectives.channel(VIS_LAYER, [VIS_CHANNEL]), FourierParam(), steps=1, size=224,
           transforms=standard_transforms(224))                      # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    render(net, objectives.channel(VIS_LAYER, [VIS_CHANNEL]), FourierParam(), steps=vis_steps, size=224,
           transforms=standard_transforms(224))
    synchronize(device)
    times["vis step"] = (time.perf_counter() - t0) / vis_steps
    base = times["vanilla"]
    print(f"\nsaliency methods and feature visualization on VGG19, {device}, one 224x224 image")
    print(f"{'':34s} {'seconds':>8s} {'x vanilla':>9s}")
    labels = {"smoothgrad": f"smoothgrad ({samples} samples)", "integrated": f"integrated ({steps} steps)",
              "vis step": f"visualization step ({VIS_LAYER}, Fourier + transforms)"}
    for name, t in times.items():
        print(f"{labels.get(name, name):34s} {t:8.3f} {t / base:9.2f}")
    print(f"feature visualization: {1 / times['vis step']:.1f} steps per second")
    return times
