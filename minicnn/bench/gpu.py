"""``python -m minicnn.bench --device cuda``: the CUDA kernels, version by version, next to cuDNN.

First every kernel version is checked against the NumPy reference on a VGG19-shaped layer (no
timing of a wrong answer); then, batch 1, 224x224, float32:

* per VGG19 convolution shape: forward time of v1 to v5 and cuDNN (v5 as minicnn runs it: its
  128x128 tiles from 128 filters up, v4 below; "v5 tiles" forces them on every layer, the
  measurement behind that rule), and backward-to-input time of minicnn (default kernels) and
  cuDNN, in ms and TFLOP/s;
* the whole VGG19: forward, saliency (forward + backward to the input) and a feature-vis step
  (forward to conv3_3 + backward), minicnn vs torch + cuDNN.

cuDNN runs through torch with TF32 off (true float32) and ``cudnn.benchmark`` on (it picks its
fastest algorithm per shape). GPU times: ``repeat`` runs after a warm-up, in 5 groups of back-to-back calls between CUDA
events, median over the groups; whole-network rows include Python's kernel-launch overhead, on
both sides.
"""
import json

import numpy as np

from ..backend import cupy
from ..files import write_text
from ..gradcheck import rel_error

LAYERS = [  # (name, C, F, H): the distinct conv shapes of VGG19 at 224x224 (3x3, pad 1)
    ("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224), ("conv2_1", 64, 128, 112),
    ("conv2_2", 128, 128, 112), ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56),
    ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv5_1", 512, 512, 14),
]
COUNT = {"conv1_1": 1, "conv1_2": 1, "conv2_1": 1, "conv2_2": 1, "conv3_1": 1, "conv3_2": 3,
         "conv4_1": 1, "conv4_2": 3, "conv5_1": 4}   # how many VGG19 layers share each shape


def gpu_name():
    """The name of GPU 0, e.g. 'NVIDIA H200'."""
    name = cupy().cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else name


def _gpu_time(fn, repeat, sync_torch=False, groups=5):
    """Milliseconds per call: ``repeat`` calls after 3 warm-ups, in ``groups`` groups, each group
    timed between two CUDA events with the calls queued back to back (as in real use); the
    median over groups ignores the occasional stall (allocator growth, a busy host) that would
    move a plain mean."""
    cp = cupy()
    for _ in range(3):
        fn()
    per_group = max(1, repeat // groups)
    times = []
    for _ in range(groups):
        if sync_torch:
            import torch
            torch.cuda.synchronize()
        cp.cuda.Device().synchronize()
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        for _ in range(per_group):
            fn()
        if sync_torch:
            import torch
            torch.cuda.synchronize()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / per_group)
    return float(np.median(times))


def validate():
    """Every kernel version against NumPy on a VGG19-like layer (odd size, two filter tiles)."""
    cp = cupy()
    from ..fast import cuda
    from .. import layers as L
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 57, 57)).astype(np.float32)
    w = (rng.standard_normal((130, 64, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(130).astype(np.float32)
    ref, cache = L.conv2d_forward(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1)
    dout = rng.standard_normal(ref.shape)
    dx, dw, _ = L.conv2d_backward(dout, cache)
    errors = {}
    for v in cuda.CONV_VERSIONS:
        out, gcache = cuda.conv2d_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), 1, 1, version=v)
        errors[f"forward v{v}"] = rel_error(cp.asnumpy(out), ref)
    for data_v, weight_v in ((1, 1), (4, 2), (5, 2)):
        gdx, gdw, _ = cuda.conv2d_backward(cp.asarray(dout.astype(np.float32)), gcache, version=data_v,
                                           weight_version=weight_v)
        errors[f"backward-data v{data_v}"] = rel_error(cp.asnumpy(gdx), dx)
        errors[f"backward-weight v{weight_v}"] = rel_error(cp.asnumpy(gdw), dw)
    for name, err in errors.items():
        print(f"  {name:20s} relative error {err:.1e}")
        if err > 1e-5:
            raise SystemExit(f"error: {name} disagrees with NumPy ({err:.1e}); not timing it")
    return errors


def bench_layers(repeat, torch):
    cp = cupy()
    from ..fast import cuda
    rows = []
    for name, C, F, H in LAYERS:
        rng = np.random.default_rng(1)
        x = cp.asarray(rng.standard_normal((1, C, H, H)).astype(np.float32))
        w = cp.asarray((rng.standard_normal((F, C, 3, 3)) * 0.05).astype(np.float32))
        b = cp.zeros(F, dtype=cp.float32)
        dout = cp.asarray(rng.standard_normal((1, F, H, H)).astype(np.float32))
        gflop = 2 * F * C * 9 * H * H / 1e9
        row = {"layer": name, "gflop": gflop, "count": COUNT[name]}
        for v in cuda.CONV_VERSIONS:
            row[f"v{v}"] = _gpu_time(lambda: cuda.conv2d_forward(x, w, b, 1, 1, version=v), repeat)
        w_ohwi = cp.ascontiguousarray(w.transpose(0, 2, 3, 1))
        row["v5 tiles"] = _gpu_time(lambda: cuda._implicit_gemm(5, x, w_ohwi, b, F, 3, 3, 1, 1, H, H), repeat)
        _, cache = cuda.conv2d_forward(x, w, b, 1, 1)
        row["bwd"] = _gpu_time(lambda: cuda.conv2d_backward(dout, cache, param_grads=False), repeat)
        if torch is not None:
            tx, tw, tb = (torch.as_tensor(a, device="cuda") for a in (x, w, b))
            td = torch.as_tensor(dout, device="cuda")
            F_ = torch.nn.functional
            row["cudnn"] = _gpu_time(lambda: F_.conv2d(tx, tw, tb, padding=1), repeat, sync_torch=True)
            row["cudnn_bwd"] = _gpu_time(lambda: torch.nn.grad.conv2d_input(tx.shape, tw, td, padding=1),
                                         repeat, sync_torch=True)
        rows.append(row)
    return rows


def bench_network(repeat, torch):
    cp = cupy()
    from ..fast import cuda
    from .jobs import as_numpy, minicnn_jobs, torch_jobs
    from ..vgg19 import vgg19
    cpu_net = vgg19(seed=0)
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    net = vgg19(seed=0).to("cuda")
    jobs = minicnn_jobs(net, cp.asarray(x))
    results = {}
    for version in cuda.CONV_VERSIONS:
        net.engine = cuda.Kernels(version=version)
        results[f"minicnn v{version}"] = {"forward": _gpu_time(jobs["forward"], repeat)}
    net.engine = cuda.Kernels()
    results[f"minicnn v{cuda.DEFAULT_VERSION}"].update(saliency=_gpu_time(jobs["saliency"], repeat),
                                                       vis_step=_gpu_time(jobs["vis_step"], repeat))
    if torch is not None:
        tjobs = torch_jobs(cpu_net, x, device="cuda")
        results["cuDNN"] = {k: _gpu_time(fn, repeat, sync_torch=True) for k, fn in tjobs.items()}
        # the answers must agree before the times mean anything
        results["agreement"] = {k: rel_error(as_numpy(jobs[k]()), as_numpy(tjobs[k]())) for k in jobs}
    return results


def bench_cuda(repeat=20, json_out=None):
    from ..backend import check_device
    check_device("cuda")
    from ..fast import cuda
    cp = cupy()
    try:
        from .jobs import torch_setup
        torch = torch_setup("cuda")
        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    gpu = gpu_name()
    print(f"GPU: {gpu}; cupy {cp.__version__}"
          + (f"; torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}" if torch else ""))
    print("validating every kernel version against NumPy:")
    errors = validate()
    rows = bench_layers(repeat, torch)
    versions = [f"v{v}" for v in cuda.CONV_VERSIONS] + ["v5 tiles"] + (["cudnn"] if torch else [])
    default = f"v{cuda.DEFAULT_VERSION}"
    print(f"\nper layer, batch 1, forward ms (TFLOP/s); {repeat} runs after warm-up, median of 5 groups")
    print(f"{'layer':8s} {'GFLOP':>6s} " + " ".join(f"{k:>14s}" for k in versions)
          + f" | {'bwd-data ' + default:>12s}" + (f" {'cuDNN bwd':>10s}" if torch else ""))
    for r in rows:
        cells = [f"{r[k]:6.3f} ({r['gflop'] / r[k]:5.1f})" for k in versions]
        line = f"{r['layer']:8s} {r['gflop']:6.3f} " + " ".join(f"{c:>14s}" for c in cells)
        line += f" | {r['bwd']:12.3f}" + (f" {r['cudnn_bwd']:10.3f}" if torch else "")
        print(line)
    totals = {key: sum(r[key] * r["count"] for r in rows) for key in versions + ["bwd"] + (["cudnn_bwd"] if torch else [])}
    for key, total in totals.items():
        print(f"  sum over VGG19's 16 convolutions, {key}: {total:.2f} ms")
    if torch:
        print(f"  ratio {default} / cuDNN: forward {totals[default] / totals['cudnn']:.2f}, "
              f"backward to the input {totals['bwd'] / totals['cudnn_bwd']:.2f}")
    net = bench_network(repeat, torch)
    print(f"\nwhole VGG19, batch 1, ms ({repeat} runs, median of 5 groups)")
    print(f"{'':14s} {'forward':>8s} {'saliency':>9s} {'vis_step':>9s}")
    for name, r in net.items():
        if name == "agreement":
            continue
        print(f"{name:14s} " + " ".join(f"{r.get(k, float('nan')):8.2f} " for k in ("forward", "saliency", "vis_step")))
    if "cuDNN" in net:
        ours, theirs = net[f"minicnn {default}"], net["cuDNN"]
        print(f"ratio minicnn {default} / cuDNN: " + ", ".join(f"{k} {ours[k] / theirs[k]:.2f}" for k in theirs))
        print("agreement with torch (relative L2): "
              + ", ".join(f"{k} {v:.1e}" for k, v in net["agreement"].items()))
    if json_out:
        write_text(json_out, json.dumps({"gpu": gpu, "errors": errors, "layers": rows, "network": net}, indent=1))
    return rows, net


def bench_gpu_convs(repeat=10, batches=(1, 8, 25)):
    """``--device cuda --convs``: every VGG19 3x3 shape at several batch sizes, forward and dx,
    on minicnn's kernels (the default version) and by Winograd F(4x4) and F(2x2) (winograd.py
    on CuPy, forced), in ms: the measurement behind ``cuda.winograd_tile``."""
    from ..backend import check_device
    check_device("cuda")
    cp = cupy()
    from ..fast import cuda
    from ..fast.winograd import conv3x3, conv3x3_backward_data
    print(f"VGG19's 3x3 convolutions on the GPU, ms per call ({repeat} runs after warm-up, median of 5 groups): "
          f"forward / dx; kernels v{cuda.DEFAULT_VERSION} vs Winograd F(4x4), F(2x2)")
    print(f"{'layer':8s} {'batch':>5s} {'kernels':>15s} {'F(4x4)':>15s} {'F(2x2)':>15s}  rule")
    rows = []
    for name, C, F, H in LAYERS[1:]:                     # conv1_1 (3 channels) is not a Winograd shape
        for n in batches:
            rng = np.random.default_rng(1)
            x = cp.asarray(rng.standard_normal((n, C, H, H)).astype(np.float32))
            w = cp.asarray((rng.standard_normal((F, C, 3, 3)) * 0.05).astype(np.float32))
            b = cp.zeros(F, dtype=cp.float32)
            dout = cp.asarray(rng.standard_normal((n, F, H, H)).astype(np.float32))
            _, cache = cuda.conv2d_forward(x, w, b, 1, 1, winograd=False)
            row = {"layer": name, "batch": n,
                   "kernels": (_gpu_time(lambda: cuda.conv2d_forward(x, w, b, 1, 1, winograd=False), repeat),
                               _gpu_time(lambda: cuda.conv2d_backward(dout, cache, param_grads=False,
                                                                      winograd=False), repeat))}
            for m in (4, 2):
                row[f"F{m}"] = (_gpu_time(lambda: conv3x3(x, w, b, 1, m), repeat),
                                _gpu_time(lambda: conv3x3_backward_data(dout, w, 1, m), repeat))
            row["rule"] = "F(4x4)" if cuda.winograd_tile(n, w.shape, 1, 1, (H, H)) else "kernels"
            rows.append(row)
            cells = " ".join(f"{row[k][0]:7.3f}/{row[k][1]:7.3f}" for k in ("kernels", "F4", "F2"))
            print(f"{name:8s} {n:5d} {cells}  {row['rule']}", flush=True)
            cp.get_default_memory_pool().free_all_blocks()
    return rows
