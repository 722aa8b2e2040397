"""The jobs minicnn.bench times, the same in minicnn and in torch: forward, saliency, vis step."""
import numpy as np

from ..backend import get_xp, to_numpy
from ..layers import one_hot

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
        p = net.run(x)
        return p.backward(one_hot(xp.asarray([TARGET_CLASS]), p.output.shape[1], p.output.dtype))

    def vis_step():
        p = net.run(x, until=VIS_LAYER)
        dact = xp.zeros_like(p.output)
        dact[0, VIS_CHANNEL] = 1.0 / (dact.shape[2] * dact.shape[3])  # d mean / d act
        return p.backward(dact)

    return {"forward": forward, "saliency": saliency, "vis_step": vis_step}


def torch_setup(device):
    """torch, set as the benchmarks run it: on a GPU, cuDNN picks its fastest algorithm per
    shape and computes in true float32 (TF32 off)."""
    import torch
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return torch


def torch_sequential(net, device="cpu", trainable=False, copy=False):
    """minicnn's network as a torch.nn.Sequential whose modules carry minicnn's layer names
    (``model.conv3_3``), on the very same weights: shared with minicnn's arrays on the CPU, or
    copied (``copy=True``, needed when torch trains them, or device="cuda")."""
    import collections
    import torch
    modules = collections.OrderedDict()
    for layer in net.layers:
        if layer.kind == "conv":
            m = torch.nn.Conv2d(layer.w.shape[1], layer.w.shape[0], layer.w.shape[2], padding=layer.pad,
                                stride=layer.stride)
        elif layer.kind == "linear":
            m = torch.nn.Linear(layer.w.shape[1], layer.w.shape[0])
        elif layer.kind == "relu":
            m = torch.nn.ReLU()
        elif layer.kind == "pool":
            m = torch.nn.MaxPool2d(layer.kernel, layer.stride)
        else:
            m = torch.nn.Flatten()
        if layer.w is not None:
            w, b = torch.from_numpy(layer.w), torch.from_numpy(layer.b)
            if copy:
                w, b = w.clone(), b.clone()
            m.weight = torch.nn.Parameter(w, requires_grad=trainable)
            m.bias = torch.nn.Parameter(b, requires_grad=trainable)
        modules[layer.name] = m
    model = torch.nn.Sequential(modules).to(device)
    return model.train() if trainable else model.eval()


def torch_jobs(net, x, device="cpu"):
    """The same jobs in PyTorch (outputs are torch tensors), on the very same weights (shared
    with minicnn's arrays on the CPU, copied once to the GPU for device="cuda")."""
    import torch
    model = torch_sequential(net, device)
    vis_end = net.position(VIS_LAYER) + 1
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
