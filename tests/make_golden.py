"""Make the PyTorch golden references in tests/data/ (run once; the tests never import torch).

    pip install torch==2.13.0      # a CPU build is enough
    python tests/make_golden.py

``golden_vgg.npz``: a small VGG-shaped network (three conv blocks with max-pools, two linear
layers), random weights from a fixed seed, and a batch of random inputs. Stored: the weights
(under minicnn's layer names, OIHW / (out, in)), the input, every layer's activation, the
logits, d logit[n, CLASS] / d input, and d mean(channel CHANNEL of MID_LAYER) / d input.
Weights and input are float32; the references are computed by torch in float64 from those
float32 values, so they are the exact answer that minicnn's float32 run must approach.

``golden_train.npz``: one training step's numbers on the same network: a batch of TRAIN_BATCH
images with labels, the mean softmax cross-entropy and d loss / d every weight and bias (float64),
what ``minicnn.training.BatchGradients`` must give however many workers share the batch.

``golden_pool_ties.npz``: max-pool forward/backward on an input full of ties, to pin down
which input of a tied window receives the gradient.
"""
import os

import numpy as np
import torch
import torch.nn.functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
BLOCKS = ((8, 8), (16, 16), (32,))       # conv channels per block (each block ends with a pool)
FC = (64,)                                # hidden linear layers; then the class layer
CLASSES = 10
INPUT = (2, 3, 40, 36)                    # N, C, H, W: non-square, more than one image
CLASS = 7
MID_LAYER, CHANNEL = "conv2_2", 5
TRAIN_BATCH = 7                           # odd: shares of 4 + 3, or 3 + 2 + 2


def build(seed=0):
    """(name, kind, weight, bias) in order, with PyTorch's default initialisation."""
    torch.manual_seed(seed)
    layers, C = [], INPUT[1]
    for b, widths in enumerate(BLOCKS, start=1):
        for i, F in enumerate(widths, start=1):
            conv = torch.nn.Conv2d(C, F, 3, padding=1)
            layers += [(f"conv{b}_{i}", "conv", conv.weight, conv.bias), (f"relu{b}_{i}", "relu", None, None)]
            C = F
        layers.append((f"pool{b}", "pool", None, None))
    layers.append(("flatten", "flatten", None, None))
    H, W = INPUT[2] >> len(BLOCKS), INPUT[3] >> len(BLOCKS)
    D = C * H * W  # a 5x4 map: the flatten order (C, H, W) matters
    first = len(BLOCKS) + 1
    for k, width in enumerate(FC + (CLASSES,)):
        lin = torch.nn.Linear(D, width)
        layers.append((f"fc{first + k}", "linear", lin.weight, lin.bias))
        if k < len(FC):
            layers.append((f"relu{first + k}", "relu", None, None))
        D = width
    return [(n, k, None if w is None else w.detach().float().numpy().copy(),
             None if b is None else b.detach().float().numpy().copy()) for n, k, w, b in layers]


def run(layers, x, until=None, params=None):
    """Forward in float64; returns (activations dict, last output). ``params`` {name: (w, b)}
    float64 tensors (e.g. requiring grad) replace the layers' own weights."""
    acts, h = {}, x
    for name, kind, w, b in layers:
        if kind in ("conv", "linear"):
            w, b = params[name] if params else (torch.from_numpy(w).double(), torch.from_numpy(b).double())
        if kind == "conv":
            h = TF.conv2d(h, w, b, padding=1)
        elif kind == "relu":
            h = torch.relu(h)
        elif kind == "pool":
            h = TF.max_pool2d(h, 2, 2)
        elif kind == "flatten":
            h = h.flatten(1)
        else:
            h = TF.linear(h, w, b)
        acts[name] = h
        if name == until:
            break
    return acts, h


def make_vgg_golden():
    layers = build()
    x = torch.randn(INPUT, generator=torch.Generator().manual_seed(1)).float().numpy()
    arrays = {"input": x, "names": np.array([n for n, *_ in layers]),
              "kinds": np.array([k for _, k, *_ in layers]), "class": CLASS,
              "mid_layer": MID_LAYER, "channel": CHANNEL}
    for name, kind, w, b in layers:
        if w is not None:
            arrays[f"{name}/weight"], arrays[f"{name}/bias"] = w, b

    xt = torch.from_numpy(x).double().requires_grad_(True)
    acts, logits = run(layers, xt)
    for name, a in acts.items():
        arrays[f"act/{name}"] = a.detach().numpy()
    arrays["logits"] = logits.detach().numpy()
    logits[:, CLASS].sum().backward()              # images are independent: per-image gradients
    arrays["grad_logit"] = xt.grad.numpy().copy()

    xt = torch.from_numpy(x).double().requires_grad_(True)
    _, mid = run(layers, xt, until=MID_LAYER)
    mid[:, CHANNEL].mean(dim=(1, 2)).sum().backward()  # mean over space of one channel, per image
    arrays["grad_channel_mean"] = xt.grad.numpy().copy()
    np.savez_compressed(os.path.join(HERE, "data", "golden_vgg.npz"), **arrays)


def make_train_golden():
    layers = build()
    g = torch.Generator().manual_seed(3)
    x = torch.randn((TRAIN_BATCH,) + INPUT[1:], generator=g).float()
    y = torch.randint(0, CLASSES, (TRAIN_BATCH,), generator=g)
    params = {}
    for name, kind, w, b in layers:
        if w is not None:
            params[name] = (torch.from_numpy(w).double().requires_grad_(True),
                            torch.from_numpy(b).double().requires_grad_(True))
    _, logits = run(layers, x.double(), params=params)
    loss = TF.cross_entropy(logits, y)                  # the mean over the batch
    loss.backward()
    arrays = {"input": x.numpy(), "labels": y.numpy(), "loss": loss.item()}
    for name, (w, b) in params.items():
        arrays[f"{name}/dw"], arrays[f"{name}/db"] = w.grad.numpy(), b.grad.numpy()
    np.savez_compressed(os.path.join(HERE, "data", "golden_train.npz"), **arrays)


def make_pool_ties_golden():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, 3, (2, 3, 7, 8), generator=g).double()   # values 0, 1, 2: many ties
    dout_shapes = {}
    arrays = {"input": x.numpy()}
    for kernel, stride in ((2, 2), (3, 2), (3, 1)):
        xt = x.clone().requires_grad_(True)
        out = TF.max_pool2d(xt, kernel, stride)
        dout = torch.randn(out.shape, generator=g).double()
        out.backward(dout)
        key = f"k{kernel}s{stride}"
        arrays[f"{key}/out"], arrays[f"{key}/dout"], arrays[f"{key}/dx"] = out.detach().numpy(), dout.numpy(), xt.grad.numpy()
        dout_shapes[key] = out.shape
    np.savez_compressed(os.path.join(HERE, "data", "golden_pool_ties.npz"), **arrays)


if __name__ == "__main__":
    os.makedirs(os.path.join(HERE, "data"), exist_ok=True)
    make_vgg_golden()
    make_train_golden()
    make_pool_ties_golden()
    print("wrote tests/data/golden_vgg.npz, golden_train.npz and golden_pool_ties.npz "
          f"(torch {torch.__version__})")
