"""``python -m minicnn.bench --convs``: each of VGG19's 3x3 convolutions (one 224x224 image) by
im2col, by Winograd F(2x2, 3x3) and by F(4x4, 3x3), forward and backward to the input, the
three alternating in one process; and which one ``fast.winograd.tile_size`` picks. The numbers behind
that rule (tutorial, "Fewer multiplications: Winograd")."""
import os
import time

import numpy as np

from ..fast.cpu import CPU
from ..fast.memory import keep_freed_memory
from ..fast.winograd import tile_size

ALGORITHMS = {"im2col": "im2col", "F(2x2)": "winograd2", "F(4x4)": "winograd4"}


def bench_convs(repeat=5, batch=1, net=None):
    """Print one row per distinct conv shape of ``net`` (default: VGG19 with random weights):
    median ms per algorithm, forward and dx, and the rule's pick. Returns the rows as dicts."""
    from ..vgg19 import vgg19
    keep_freed_memory()
    net, rng = net or vgg19(seed=0, notop=True), np.random.default_rng(0)
    rows = []
    print(f"{net.meta.get('architecture', 'the network')}'s 3x3 convolutions, batch {batch}, CPU "
          f"({os.cpu_count()} cores); median ms of {repeat} alternating runs; forward / backward to the input")
    print(f"{'layer':8s} {'channels':>9s} {'size':>4s}  " + "  ".join(f"{a:>13s}" for a in ALGORITHMS) + "  rule")
    shape, seen = net.input_shape, set()
    engines = {name: CPU(algorithm=algorithm) for name, algorithm in ALGORITHMS.items()}
    for layer in net.layers:
        if layer.kind == "conv" and layer.w.shape[2:] == (3, 3) and layer.stride == 1 and layer.pad == 1 \
                and (layer.w.shape, shape[1:]) not in seen:
            seen.add((layer.w.shape, shape[1:]))
            x = rng.standard_normal((batch,) + shape, dtype=np.float32)
            times = {name: ([], []) for name in ALGORITHMS}
            for _ in range(repeat):
                for name, engine in engines.items():
                    t0 = time.perf_counter()
                    out, cache = engine.conv2d_forward(x, layer.w, layer.b, 1, 1)
                    t1 = time.perf_counter()
                    engine.conv2d_backward(out, cache, param_grads=False)
                    times[name][0].append(t1 - t0)
                    times[name][1].append(time.perf_counter() - t1)
            picked = tile_size(layer.w.shape, 1, shape[1:])       # 3x3, pad 1: out size = in size
            rows.append({"layer": layer.name, "rule": picked,
                         **{name: (float(np.median(f)), float(np.median(b))) for name, (f, b) in times.items()}})
            cells = "  ".join(f"{np.median(f) * 1e3:6.1f} /{np.median(b) * 1e3:6.1f}" for f, b in times.values())
            print(f"{layer.name:8s} {layer.w.shape[1]:>4d}>{layer.w.shape[0]:<4d} {shape[1]:4d}  {cells}  "
                  f"{f'F({picked}x{picked})' if picked else 'im2col'}", flush=True)
        shape = net.output_shape(layer.name)
    return rows
