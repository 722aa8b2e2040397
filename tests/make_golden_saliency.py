"""Make tests/data/golden_saliency.npz: saliency references from PyTorch autograd.

    pip install torch==2.13.0 && python tests/make_golden_saliency.py

Uses the network of golden_vgg.npz (run make_golden.py first). For two RGB images in [0, 1] and
both preprocessing presets (Keras: BGR, 0..255 minus the mean; torchvision: mean/std), in pixel
space and float64:

* vanilla: d logit[target] / d pixels, and its saliency map (max |.| over channels);
* smoothgrad: the mean gradient over the fixed noise tensor stored in the file;
* integrated: integrated gradients from a black baseline, midpoint rule, STEPS steps;
* guided: guided backprop (ReLU backward also drops negative gradients);
* gradcam: Grad-CAM at relu3_1 (the last conv after its ReLU): the weighted sum of the maps
  before the final ReLU (signed), the map at the layer's resolution, and upsampled bilinearly
  (align_corners=False) to the image.
"""
import os

import numpy as np
import torch
import torch.nn.functional as TF

HERE = os.path.dirname(os.path.abspath(__file__))
PRESETS = {
    "keras": {"channel_order": "BGR", "scale": 255.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]},
    "torchvision": {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
TARGETS = [4, 3]   # classes whose Grad-CAM maps have positive and negative parts with both presets
SAMPLES, SIGMA, STEPS = 4, 0.15, 8
CAM_LAYER = "relu3_1"


class GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (out > 0) * (grad > 0)


def preprocess(pixels, prep):
    x = pixels.flip(1) if prep["channel_order"] == "BGR" else pixels
    mean = torch.tensor(prep["mean"], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(prep["std"], dtype=torch.float64).view(1, 3, 1, 1)
    return (x * prep["scale"] - mean) / std


def network(g, guided=False, keep=None):
    names, kinds = [str(n) for n in g["names"]], [str(k) for k in g["kinds"]]

    def run(x):
        acts = {}
        for name, kind in zip(names, kinds):
            if kind == "conv":
                x = TF.conv2d(x, torch.from_numpy(g[f"{name}/weight"]).double(),
                              torch.from_numpy(g[f"{name}/bias"]).double(), padding=1)
            elif kind == "relu":
                x = GuidedReLU.apply(x) if guided else torch.relu(x)
            elif kind == "pool":
                x = TF.max_pool2d(x, 2, 2)
            elif kind == "flatten":
                x = x.flatten(1)
            else:
                x = TF.linear(x, torch.from_numpy(g[f"{name}/weight"]).double(),
                              torch.from_numpy(g[f"{name}/bias"]).double())
            if keep == name:
                x.retain_grad()
                acts[name] = x
        return x, acts
    return run


def grad_of(run, pixels, prep, targets):
    p = pixels.clone().requires_grad_(True)
    logits, _ = run(preprocess(p, prep))
    logits[torch.arange(len(targets)), torch.tensor(targets)].sum().backward()
    return p.grad.detach()


def main():
    g = dict(np.load(os.path.join(HERE, "data", "golden_vgg.npz")))
    gen = torch.Generator().manual_seed(3)
    N, _, H, W = g["input"].shape
    pixels = torch.rand((N, 3, H, W), generator=gen, dtype=torch.float64)
    noise = torch.randn((SAMPLES, 3, H, W), generator=gen, dtype=torch.float64) * SIGMA
    out = {"pixels": pixels.numpy(), "targets": np.array(TARGETS), "noise": noise.numpy(),
           "steps": STEPS, "cam_layer": CAM_LAYER}
    plain, guided = network(g), network(g, guided=True)
    for preset, prep in PRESETS.items():
        grad = grad_of(plain, pixels, prep, TARGETS)
        out[f"{preset}/gradient"] = grad.numpy()
        out[f"{preset}/saliency"] = grad.abs().amax(dim=1).numpy()
        sg = torch.stack([grad_of(plain, pixels[n:n + 1] + noise, prep, [TARGETS[n]] * SAMPLES).mean(0)
                          for n in range(N)])
        out[f"{preset}/smoothgrad"] = sg.numpy()
        alphas = (torch.arange(STEPS, dtype=torch.float64) + 0.5) / STEPS
        ig = []
        for n in range(N):
            path = alphas.view(-1, 1, 1, 1) * pixels[n:n + 1]          # black baseline
            ig.append(pixels[n] * grad_of(plain, path, prep, [TARGETS[n]] * STEPS).mean(0))
        out[f"{preset}/integrated"] = torch.stack(ig).numpy()
        out[f"{preset}/guided"] = grad_of(guided, pixels, prep, TARGETS).numpy()
        run = network(g, keep=CAM_LAYER)
        logits, acts = run(preprocess(pixels.clone().requires_grad_(True), prep))
        logits[torch.arange(N), torch.tensor(TARGETS)].sum().backward()
        A, dA = acts[CAM_LAYER], acts[CAM_LAYER].grad
        signed = (dA.mean(dim=(2, 3), keepdim=True) * A).sum(dim=1).detach()
        cam = torch.relu(signed)
        out[f"{preset}/cam_signed"] = signed.numpy()
        out[f"{preset}/cam"] = cam.numpy()
        out[f"{preset}/cam_upsampled"] = TF.interpolate(cam[:, None], size=(H, W), mode="bilinear",
                                                        align_corners=False)[:, 0].numpy()
    np.savez_compressed(os.path.join(HERE, "data", "golden_saliency.npz"), **out)
    print(f"wrote tests/data/golden_saliency.npz (torch {torch.__version__})")


if __name__ == "__main__":
    main()
