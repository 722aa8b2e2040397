"""``python -m minicnn.bench --jobs``: the jobs users wait on, each next to the tool a user of
the field would reach for, on the same machine, alternating:

    training-step     the world model, batch 64: forward, loss, backward with parameter
                      gradients, AdamW update                      vs the same step in torch
    smoothgrad        VGG19, 224 px, 25 noisy samples               vs Captum NoiseTunnel(Saliency)
    integrated        VGG19, 224 px, 50 steps                       vs Captum IntegratedGradients
    vis-grid          VGG19 conv3_3, 16 channels at once, 128 px,   vs Lucent render_vis with a
                      64 steps, decorrelated Fourier + transforms      batch parameterization
    vis-grid-hed      the same grid on HED's real VGG16 trunk        vs Lucent on a torch module
                      (--model vgg16-hed; skipped when not fetched)    of the same file
    saliency-pass     VGG19: forward + backward of one logit          vs torch
    vis-step          VGG19: forward to conv3_3 + backward            vs torch

Each framework runs in its own fresh process (as in the rest of minicnn.bench), alternating:
so the reference runs with its own memory allocator settings, not minicnn's (minicnn.fast.memory).
A row whose reference is not installed is skipped with a one-line reason. Weights are random
(seeded) and the same in both. With ``--device cuda`` both run on the GPU (torch through cuDNN,
float32, TF32 off) and each timed run ends with the result on the host, so that it includes
all the GPU work; the training step, a CPU goal, is not run there. Outputs that are deterministic in both frameworks are compared
(the last column); SmoothGrad's noise and the visualizations' random starts differ.
"""
import json
import os
import tempfile
import time

import numpy as np

from ..errors import UsageError
from ..files import atomic_write
from ..gradcheck import rel_error
from ..saliency.methods import DEFAULT_BATCH
from .cpu import spawn_worker
from .jobs import (TARGET_CLASS, VIS_LAYER, as_numpy, minicnn_jobs, torch_jobs, torch_sequential,
                   torch_setup)

GRID_CHANNELS, GRID_SIZE, GRID_STEPS = 16, 128, 64
SAMPLES, IG_STEPS, SIGMA = 25, 50, 0.15
TRAIN_BATCH = 64


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

    class Normalized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model
            self.register_buffer("mean", torch.tensor(prep["mean"]).view(1, 3, 1, 1))   # buffers move
            self.register_buffer("std", torch.tensor(prep["std"]).view(1, 3, 1, 1))     # with .to(device)

        def forward(self, x):
            return self.model((x - self.mean) / self.std)

    return Normalized().eval()


def _on(device, net, *arrays):
    """minicnn's network (moved in place, and frozen as a loaded one is: its Winograd filter
    transforms are kept from their second use, Network.freeze) and the arrays, on the device."""
    from ..backend import to_device
    return (net.freeze().to(device),) + tuple(to_device(a, device) for a in arrays)


def training_step(framework, batch=None, device="cpu"):
    """One optimizer step of the world model on a fixed batch of 64; returns the loss."""
    from ..models import build
    net = build("world", seed=0)
    net.meta.pop("preprocessing")     # both frameworks take x as the first layer's input
    x = _pixels(TRAIN_BATCH, net.input_shape[1]) - 0.5
    y = np.random.default_rng(2).integers(0, 10, TRAIN_BATCH)
    if framework == "minicnn":
        from ..optim import Adam
        from ..training import BatchGradients
        opt = Adam([p for _, layer in net.params() for p in (layer.w, layer.b)], lr=1e-4, weight_decay=0.05)
        gradients = BatchGradients(net)           # as minicnn.training.train runs it: 2 workers

        def step():
            loss, _, grads = gradients(x, y)
            opt.step([g for pair in grads for g in pair])
            return np.float32(loss)
        return step
    import torch
    model = torch_sequential(net, trainable=True, copy=True)
    topt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        topt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        topt.step()
        return np.float32(loss.item())
    return step


def smoothgrad(framework, batch=None, device="cpu"):
    """SmoothGrad's mean gradient for one VGG19 image (the noise differs between frameworks)."""
    net, pixels = _vgg19(), _pixels(1, 224)
    if framework == "minicnn":
        from ..saliency.methods import smoothgrad as run
        net, pixels = _on(device, net, pixels)
        return lambda: run(net, pixels, [TARGET_CLASS], samples=SAMPLES, noise=SIGMA,
                           batch=batch).attribution
    from captum.attr import NoiseTunnel, Saliency
    torch = torch_setup(device)
    tunnel = NoiseTunnel(Saliency(_normalized(torch_sequential(net), net).to(device)))
    xt = torch.from_numpy(pixels).to(device)
    return lambda: tunnel.attribute(xt, nt_type="smoothgrad", nt_samples=SAMPLES, stdevs=SIGMA,
                                    nt_samples_batch_size=batch or DEFAULT_BATCH[device],
                                    target=TARGET_CLASS, abs=False).detach().cpu().numpy()


def integrated(framework, batch=None, device="cpu"):
    """Integrated gradients from black, 50 steps, the midpoint rule in both."""
    net, pixels = _vgg19(), _pixels(1, 224)
    base = np.zeros_like(pixels)
    if framework == "minicnn":
        from ..saliency.methods import integrated as run
        net, pixels, base = _on(device, net, pixels, base)
        return lambda: run(net, pixels, [TARGET_CLASS], steps=IG_STEPS, baseline=base[0],
                           batch=batch).attribution
    from captum.attr import IntegratedGradients
    torch = torch_setup(device)
    ig = IntegratedGradients(_normalized(torch_sequential(net), net).to(device))
    xt, bt = torch.from_numpy(pixels).to(device), torch.from_numpy(base).to(device)
    return lambda: ig.attribute(xt, baselines=bt, target=TARGET_CLASS, n_steps=IG_STEPS, method="riemann_middle",
                                internal_batch_size=batch or DEFAULT_BATCH[device]).detach().cpu().numpy()


def _minicnn_grid(net, channels, device):
    net, = _on(device, net)
    from ..visualize import objectives, render
    from ..visualize.param import FourierParam
    from ..visualize.transforms import standard_transforms
    return lambda: render(net, objectives.channel(VIS_LAYER, channels), FourierParam(), steps=GRID_STEPS,
                          size=GRID_SIZE, n_images=len(channels), transforms=standard_transforms(GRID_SIZE))[0]


def vis_grid(framework, batch=None, device="cpu"):
    """16 channels of conv3_3 at once, 128 px, 64 steps, Fourier + Lucid's transforms."""
    net = _vgg19()
    channels = list(range(GRID_CHANNELS))
    if framework == "minicnn":
        return _minicnn_grid(net, channels, device)
    import warnings
    from lucent.optvis import objectives as lobj, param as lparam, render as lrender
    warnings.filterwarnings("ignore", message="Some layers could not be computed")   # the classifier at 128 px
    torch_setup(device)          # Lucent puts its images on the GPU whenever torch sees one
    model = torch_sequential(net, device)         # its modules carry minicnn's names: "conv3_3"
    objective = sum(lobj.channel(VIS_LAYER, c, batch=c) for c in channels)
    return lambda: np.asarray(lrender.render_vis(
        model, objective, lambda: lparam.image(GRID_SIZE, batch=GRID_CHANNELS), thresholds=(GRID_STEPS,),
        show_image=False, progress=False, fixed_image_size=GRID_SIZE)[-1])   # no upsampling to 224: the same job


def _hed_or_skip():
    """HED's trunk from the cache (python -m minicnn.weights download vgg16-hed), or None."""
    from ..weights import hed, load_network
    from ..weights.cache import cache_dir
    from ..vgg19 import hed_trunk
    from ..weights import layer_spec
    path = os.path.join(cache_dir(), hed.CACHED)
    return load_network(path, expected_layers=layer_spec(hed_trunk(init=False))) if os.path.isfile(path) else None


def vis_grid_hed(framework, batch=None, device="cpu"):
    """vis-grid on HED's VGG16 trunk, with its own preprocessing (BGR 0..255 minus HED's mean)
    in front of Lucent's torch module, and no other preprocessing on either side."""
    net = _hed_or_skip()
    channels = list(range(GRID_CHANNELS))
    if framework == "minicnn":
        return _minicnn_grid(net, channels, device)
    import torch
    from lucent.optvis import objectives as lobj, param as lparam, render as lrender
    torch_setup(device)
    trunk = torch_sequential(net, device)
    prep = net.meta["preprocessing"]

    class Caffe(torch.nn.Module):        # RGB [0, 1] -> BGR 0..255 minus the mean, then the trunk
        def __init__(self):
            super().__init__()
            self.net = trunk
            self.register_buffer("mean", torch.tensor(prep["mean"]).view(1, 3, 1, 1))

        def forward(self, x):
            return self.net(x.flip(1) * prep["scale"] - self.mean)

    model = Caffe().to(device).eval()
    objective = sum(lobj.channel(f"net_{VIS_LAYER}", c, batch=c) for c in channels)
    return lambda: np.asarray(lrender.render_vis(
        model, objective, lambda: lparam.image(GRID_SIZE, batch=GRID_CHANNELS), thresholds=(GRID_STEPS,),
        show_image=False, progress=False, fixed_image_size=GRID_SIZE, preprocess=False)[-1])


def _pass(name):
    def job(framework, batch=None, device="cpu"):
        net = _vgg19()
        x = np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
        if framework == "minicnn":
            jobs = minicnn_jobs(*_on(device, net, x))
        else:
            torch_setup(device)
            jobs = torch_jobs(net, x, device)
        return lambda: as_numpy(jobs[name]())
    return job


# row: (builder, reference framework, goal ratio on the CPU, on a GPU (None: none set),
#       relative-difference tolerance or None)
JOBS = {"training-step": (training_step, "torch", 1.25, None, 1e-4),
        "smoothgrad": (smoothgrad, "captum", 1.0, 1.5, None),        # each draws its own noise
        "integrated": (integrated, "captum", 1.0, 1.5, 5e-2),
        "vis-grid": (vis_grid, "lucent", 1.0, 1.5, None),            # each draws its own images
        "vis-grid-hed": (vis_grid_hed, "lucent", 1.0, 1.5, None),
        "saliency-pass": (_pass("saliency"), "torch", 1.15, None, 5e-2),
        "vis-step": (_pass("vis_step"), "torch", 1.15, None, 5e-2)}


def worker(job, framework, repeat, batch, out_npz, device="cpu"):
    """In a fresh process: build the job, run it once (its output goes to out_npz), then time
    it ``repeat`` times, and more while the runs add up to under 5 s (quick jobs vary most);
    prints the times as JSON. Each timed run ends with the output in host memory (as_numpy),
    so a GPU job is timed to its end."""
    if job not in JOBS or framework not in ("minicnn", JOBS[job][1]):
        raise UsageError(f"--job-worker {str(job)[:40]} {str(framework)[:40]}: no such job and framework")
    run = JOBS[job][0](framework, batch, device)
    output = np.asarray(as_numpy(run()), dtype=np.float32)
    with atomic_write(out_npz, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, output=output)
    times = []
    while len(times) < repeat or (sum(times) < 5 and len(times) < 100):
        t0 = time.perf_counter()
        as_numpy(run())
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def _spawn(job, framework, repeat, batch, out_npz, device):
    return spawn_worker(framework, ["--job-worker", job, framework, "--repeat", str(repeat), "--out", out_npz,
                                    "--device", device] + (["--batch", str(batch)] if batch else []))


def bench_jobs(rounds=2, repeat=2, batch=None, only=None, device="cpu"):
    """Print one row per job: minicnn's and the reference's median seconds, their ratio, the
    goal, and the agreement of their outputs. Returns {job: (minicnn s, reference s)}."""
    import importlib.util
    where = f"CPU ({os.cpu_count()} cores)"
    if device == "cuda":
        from ..backend import check_device
        from .gpu import gpu_name
        check_device("cuda")
        where = "GPU " + gpu_name()
    print(f"minicnn next to the references, {where}; each framework in its own "
          f"process, {rounds} alternating round(s) of at least {repeat} timed run(s) (more while under 5 s) "
          "after a warm-up; medians")
    print(f"{'job':15s} {'reference':10s} {'minicnn s':>10s} {'ref s':>9s} {'ratio':>6s} {'goal':>5s}  check",
          flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for job, (_, ref, cpu_goal, gpu_goal, tol) in JOBS.items():
            if only and job not in only:
                continue
            goal = cpu_goal if device == "cpu" else gpu_goal
            if device != "cpu" and job == "training-step":
                print(f"{job:15s} skipped: its goal is for the CPU, where the world model trains", flush=True)
                continue
            missing = sorted(m for m in {"torch", ref} if importlib.util.find_spec(m) is None)
            if job == "vis-grid-hed" and not missing and _hed_or_skip() is None:
                print(f"{job:15s} skipped: HED's weights are not in the cache "
                      "(python -m minicnn.weights download vgg16-hed)", flush=True)
                continue
            if missing:
                print(f"{job:15s} skipped: {', '.join(missing)} not installed", flush=True)
                continue
            times = {"minicnn": [], ref: []}
            for _ in range(rounds):
                for fw in times:
                    times[fw] += _spawn(job, fw, repeat, batch, os.path.join(tmp, f"{fw}.npz"), device)
            ours, theirs = (float(np.median(times[fw])) for fw in times)
            check = "-"
            if tol is not None:
                a, b = (np.load(os.path.join(tmp, f"{fw}.npz"))["output"] for fw in times)
                diff = rel_error(a, b)
                check = f"{diff:.1e}" + (" OK" if diff <= tol else " DIFFERS")
            results[job] = (ours, theirs)
            goal_text = f"{goal:5.2f}" if goal else f"{'-':>5s}"
            print(f"{job:15s} {ref:10s} {ours:10.3f} {theirs:9.3f} {ours / theirs:6.2f} {goal_text}  {check}",
                  flush=True)
    return results
