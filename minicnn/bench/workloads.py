"""``python -m minicnn.bench --jobs``: the jobs users wait on, each next to the tool a user of
the field would reach for, measured side by side in one process, alternating (median of
``rounds`` runs after one warm-up of each):

    training step     the world model, batch 64: forward, loss, backward with parameter
                      gradients, AdamW update                      vs the same step in torch
    smoothgrad        VGG19, 224 px, 25 noisy samples               vs Captum NoiseTunnel(Saliency)
    integrated        VGG19, 224 px, 50 steps                       vs Captum IntegratedGradients
    vis grid          VGG19 conv3_3, 16 channels at once, 128 px,   vs Lucent render_vis with a
                      64 steps, decorrelated Fourier + transforms      batch parameterization
    single passes     VGG19 saliency map; one vis step (conv3_3)    vs torch

A row whose reference is not installed is skipped with a one-line reason. Weights are random
(seeded) and shared: the references run on minicnn's own arrays. Outputs that are
deterministic in both frameworks are compared before a time is printed.
"""
import os
import time

import numpy as np

from ..gradcheck import rel_error
from .jobs import TARGET_CLASS, VIS_LAYER, minicnn_jobs, torch_jobs, torch_sequential

GRID_CHANNELS, GRID_SIZE, GRID_STEPS = 16, 128, 64
SAMPLES, IG_STEPS, SIGMA = 25, 50, 0.15
TRAIN_BATCH = 64


def _time(fn, rounds):
    fn()                                          # warm-up: allocations, thread pools, caches
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _side_by_side(ours, theirs, rounds):
    """Median seconds of each, measured alternately so both see the same machine load."""
    ours(), theirs()
    a, b = [], []
    for _ in range(rounds):
        for fn, out in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return float(np.median(a)), float(np.median(b))


def _vgg19():
    from ..vgg19 import vgg19
    net = vgg19(seed=0)
    net.meta["preprocessing"] = {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406],
                                 "std": [0.229, 0.224, 0.225]}     # torchvision's, as Captum users have it
    return net


def _pixels(n, size, seed=1):
    return np.random.default_rng(seed).uniform(0, 1, (n, 3, size, size)).astype(np.float32)


def _normalized(model, net):
    """The torch model with minicnn's preprocessing in front: it takes pixels in [0, 1]."""
    import torch
    prep = net.meta["preprocessing"]
    mean = torch.tensor(prep["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(prep["std"]).view(1, 3, 1, 1)

    class Normalized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model((x - mean) / std)

    return Normalized().eval()


def training_step(rounds):
    import torch
    from .. import layers as L
    from ..models import build
    from ..optim import Adam
    net = build("world", seed=0)
    x = _pixels(TRAIN_BATCH, net.input_shape[1]) - 0.5
    y = np.random.default_rng(2).integers(0, 10, TRAIN_BATCH)
    params = [p for _, layer in net.params() for p in (layer.w, layer.b)]
    opt = Adam(params, lr=1e-4, weight_decay=0.05)
    model = torch_sequential(net, trainable=True, copy=True)
    topt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05 * 1e-4 / 1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def ours():
        loss, dlogits = L.softmax_cross_entropy(net.forward(x), y)
        grads = {}
        net.backward(dlogits, grads=grads, input_grad=False)
        opt.step([g for name, _ in net.params() for g in grads[name]])
        return loss

    def theirs():
        topt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        topt.step()
        return loss

    first = (float(ours()), theirs().item())     # the same weights and batch: the same loss
    check = abs(first[0] - first[1]) / abs(first[1])
    return _side_by_side(ours, theirs, rounds) + (check, 1e-4)


def smoothgrad(rounds, batch):
    from captum.attr import NoiseTunnel, Saliency
    import torch
    from ..saliency.methods import smoothgrad as ours_fn
    net = _vgg19()
    pixels = _pixels(1, 224)
    model = _normalized(torch_sequential(net), net)
    tunnel = NoiseTunnel(Saliency(model))
    xt = torch.from_numpy(pixels)

    def ours():
        return ours_fn(net, pixels, [TARGET_CLASS], samples=SAMPLES, noise=SIGMA, batch=batch)["attribution"]

    def theirs():
        return tunnel.attribute(xt, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=SIGMA,
                                target=TARGET_CLASS, abs=False)

    # the noise differs (each draws its own): no output comparison; tests/test_definitions.py
    # checks minicnn's SmoothGrad against its definition
    return _side_by_side(ours, theirs, rounds) + (None, None)


def integrated(rounds, batch):
    from captum.attr import IntegratedGradients
    import torch
    from ..saliency.methods import integrated as ours_fn
    net = _vgg19()
    pixels = _pixels(1, 224)
    model = _normalized(torch_sequential(net), net)
    ig = IntegratedGradients(model)
    xt = torch.from_numpy(pixels)
    base = np.zeros_like(pixels)                    # black, both; the midpoint rule, both

    def ours():
        return ours_fn(net, pixels, [TARGET_CLASS], steps=IG_STEPS, baseline=base[0], batch=batch)["attribution"]

    def theirs():
        return ig.attribute(xt, baselines=torch.from_numpy(base), target=TARGET_CLASS, n_steps=IG_STEPS,
                            method="riemann_middle", internal_batch_size=batch)

    check = rel_error(np.asarray(ours()), theirs().detach().numpy())
    return _side_by_side(ours, theirs, rounds) + (check, 5e-2)


def vis_grid(rounds):
    from lucent.optvis import objectives as lobj, param as lparam, render as lrender
    from ..visualize import objectives, render
    from ..visualize.param import FourierParam
    from ..visualize.transforms import standard_transforms
    net = _vgg19()
    channels = list(range(GRID_CHANNELS))

    def ours():
        return render(net, objectives.channel(VIS_LAYER, channels), FourierParam(), steps=GRID_STEPS,
                      size=GRID_SIZE, n_images=GRID_CHANNELS, transforms=standard_transforms(GRID_SIZE))

    model = torch_sequential(net)                 # its modules carry minicnn's names: "conv3_3"
    objective = sum(lobj.channel(VIS_LAYER, c, batch=c) for c in channels)

    def theirs():
        return lrender.render_vis(model, objective, lambda: lparam.image(GRID_SIZE, batch=GRID_CHANNELS),
                                  thresholds=(GRID_STEPS,), show_image=False, progress=False,
                                  fixed_image_size=GRID_SIZE)   # no upsampling to 224: the same job

    return _side_by_side(ours, theirs, rounds) + (None, None)


def single_passes(rounds):
    net = _vgg19()
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    ours, theirs = minicnn_jobs(net, x), torch_jobs(net, x)
    rows = {}
    for name in ("saliency", "vis_step"):
        check = rel_error(np.asarray(ours[name]()), theirs[name]().detach().numpy())
        rows[name] = _side_by_side(ours[name], theirs[name], rounds) + (check, 5e-2)
    return rows


GOALS = {"training step": 1.25, "smoothgrad": 1.0, "integrated": 1.0, "vis grid": 1.0,
         "saliency pass": 1.15, "vis step": 1.15}
REFERENCES = {"training step": "torch", "smoothgrad": "captum", "integrated": "captum", "vis grid": "lucent",
              "saliency pass": "torch", "vis step": "torch"}


def bench_jobs(rounds=3, batch=None, only=None):
    """Print one row per job: minicnn's and the reference's median seconds, their ratio and the
    issue's goal. Returns {row: (ours, theirs)}."""
    import importlib.util
    batch = batch or SAMPLES
    print(f"minicnn next to the references, CPU ({os.cpu_count()} cores), median of {rounds} alternating runs")
    print(f"{'job':15s} {'reference':10s} {'minicnn s':>10s} {'ref s':>9s} {'ratio':>6s} {'goal':>5s}  check")
    runs = {"training step": lambda: training_step(rounds),
            "smoothgrad": lambda: smoothgrad(rounds, batch),
            "integrated": lambda: integrated(rounds, batch),
            "vis grid": lambda: vis_grid(rounds),
            "single passes": lambda: single_passes(rounds)}
    results = {}
    for job, run in runs.items():
        if only and job not in only:
            continue
        names = ["saliency pass", "vis step"] if job == "single passes" else [job]
        ref = REFERENCES[names[0]]
        missing = [m for m in {"torch", ref} if importlib.util.find_spec(m) is None]
        if missing:
            print(f"{job:15s} skipped: {', '.join(sorted(missing))} not installed")
            continue
        out = run()
        rows = dict(zip(names, out.values())) if isinstance(out, dict) else {job: out}
        for name, (ours, theirs, check, tol) in rows.items():
            results[name] = (ours, theirs)
            agreement = "-" if check is None else f"{check:.1e}" + (" OK" if check <= tol else " DIFFERS")
            print(f"{name:15s} {ref:10s} {ours:10.3f} {theirs:9.3f} {ours / theirs:6.2f} {GOALS[name]:5.2f}  {agreement}",
                  flush=True)
    return results
