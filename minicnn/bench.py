"""``python -m minicnn.bench``: how fast is minicnn, side by side with PyTorch.

On full-size VGG19 with random weights (seeded, the same in both frameworks) and one random
224x224 image, it times three jobs:

* ``forward``        forward to the logits;
* ``saliency``       forward to the logits + backward of one logit to the input (a saliency map);
* ``vis_step``       forward to conv3_3 + backward of one channel's mean (a feature-vis step).

Each framework runs in its own fresh process (two BLAS thread pools in one process slow each
other down), alternating over several rounds so both see the same machine load; the outputs are
compared before any time is printed (a fast wrong answer is not a result). Memory: the resident
size after building the network (VGG19 holds 548 MB of float32 weights) and the peak extra
memory the three jobs need on top of it. torch is optional: without it only minicnn's column
is printed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .backend import get_xp, to_numpy
from .gradcheck import rel_error

JOBS = ("forward", "saliency", "vis_step")
TARGET_CLASS = 3     # the logit whose input gradient is taken
VIS_LAYER, VIS_CHANNEL = "conv3_3", 5


# Relative L2 difference allowed between minicnn and torch. Logits: float32 round-off.
# Input gradients: through 5 max-pools, float32 round-off can flip which input wins a window
# whose values are nearly equal, moving that gradient elsewhere: on this network torch's own
# float32 and float64 input gradients differ by about 0.8%, so 5% still catches any real bug
# (a wrong backward pass gives O(1) differences).
TOLERANCE = {"forward": 1e-4, "saliency": 5e-2, "vis_step": 5e-2}


def _input(seed=1):
    return np.random.default_rng(seed).standard_normal((1, 3, 224, 224), dtype=np.float32)


def minicnn_jobs(net, x):
    """The three jobs as functions of no argument, each returning its output (on x's device)."""
    xp = get_xp(x)

    def forward():
        return net.forward(x)

    def saliency():
        logits = net.forward(x)
        dlogits = xp.zeros_like(logits)
        dlogits[0, TARGET_CLASS] = 1.0
        return net.backward(dlogits)

    def vis_step():
        act = net.forward(x, until=VIS_LAYER)
        dact = xp.zeros_like(act)
        dact[0, VIS_CHANNEL] = 1.0 / (act.shape[2] * act.shape[3])  # d mean / d act
        return net.backward(dact)

    return {"forward": forward, "saliency": saliency, "vis_step": vis_step}


def torch_jobs(net, x, device="cpu"):
    """The same jobs in PyTorch (outputs are torch tensors), on the very same weights (shared
    with minicnn's arrays on the CPU, copied once to the GPU for device="cuda")."""
    import torch
    modules, vis_end = [], None
    for layer in net.layers:
        if layer.kind == "conv":
            m = torch.nn.Conv2d(layer.w.shape[1], layer.w.shape[0], layer.w.shape[2], padding=layer.pad)
        elif layer.kind == "linear":
            m = torch.nn.Linear(layer.w.shape[1], layer.w.shape[0])
        elif layer.kind == "relu":
            m = torch.nn.ReLU()
        elif layer.kind == "pool":
            m = torch.nn.MaxPool2d(layer.kernel, layer.stride)
        else:
            m = torch.nn.Flatten()
        if layer.w is not None:
            m.weight = torch.nn.Parameter(torch.from_numpy(layer.w), requires_grad=False)
            m.bias = torch.nn.Parameter(torch.from_numpy(layer.b), requires_grad=False)
        modules.append(m)
        if layer.name == VIS_LAYER:
            vis_end = len(modules)
    model = torch.nn.Sequential(*modules).to(device).eval()
    xt = torch.from_numpy(x).to(device)

    def forward():
        with torch.no_grad():
            return model(xt)

    def saliency():
        xi = xt.clone().requires_grad_(True)
        model(xi)[0, TARGET_CLASS].backward()
        return xi.grad

    def vis_step():
        xi = xt.clone().requires_grad_(True)
        model[:vis_end](xi)[0, VIS_CHANNEL].mean().backward()
        return xi.grad

    return {"forward": forward, "saliency": saliency, "vis_step": vis_step}


def as_numpy(value):
    """numpy from a numpy, cupy or torch array."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return to_numpy(value)


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
    from .vgg19 import vgg19
    net, x = vgg19(seed=0), _input()
    jobs = minicnn_jobs(net, x) if framework == "minicnn" else torch_jobs(net, x)
    base = _rss_mb("VmRSS")
    _reset_peak()
    outputs = {name: as_numpy(job()) for name, job in jobs.items()}  # warm-up; kept for checks
    extra = _rss_mb("VmHWM") - base
    np.savez(out_npz, **outputs)
    times = {name: [] for name in JOBS}
    for _ in range(repeat):
        for name in JOBS:
            t0 = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - t0)
    print(json.dumps({"times": times, "base_mb": base, "extra_mb": extra}))


def _spawn(framework, repeat, out_npz):
    cmd = [sys.executable, "-m", "minicnn.bench", "--worker", framework,
           "--repeat", str(repeat), "--out", out_npz]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{framework} benchmark failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
    from . import objectives
    from .backend import synchronize, to_device
    from .param import FourierParam
    from .saliency import METHODS, run_method
    from .transforms import standard_transforms
    from .visualize import render
    from .vgg19 import vgg19
    net = vgg19(seed=0).to(device)
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
    render(net, VIS_LAYER, objectives.channel([VIS_CHANNEL]), FourierParam(), steps=1, size=224,
           transforms=standard_transforms(224))                      # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    render(net, VIS_LAYER, objectives.channel([VIS_CHANNEL]), FourierParam(), steps=vis_steps, size=224,
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m minicnn.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per job and round (default 3 on the CPU, 20 on the GPU)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per framework, alternated (default 3)")
    parser.add_argument("--json-out", metavar="FILE", help="also write the GPU results as JSON")
    parser.add_argument("--methods", action="store_true",
                        help="also time every saliency method and a feature-visualization step")
    parser.add_argument("--worker", choices=["minicnn", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.repeat, args.out)
    if args.device == "cuda":
        from .backend import DeviceError
        from .bench_cuda import bench_cuda
        try:
            bench_cuda(args.repeat or 20, json_out=args.json_out)
        except DeviceError as e:
            sys.exit(f"error: {e}")
        if args.methods:
            bench_methods("cuda")
        return
    bench_cpu(args.repeat or 3, args.rounds)
    if args.methods:
        bench_methods("cpu")


if __name__ == "__main__":
    main()
