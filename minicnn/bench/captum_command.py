"""The reference for ``python -m minicnn.saliency``'s whole-command timings: the same job as a
PyTorch + Captum user writes it, as one plain script (no minicnn inside).

    python minicnn/bench/captum_command.py vgg19.pth photo.jpg --method smoothgrad --outdir out

It loads a torchvision-layout VGG19 state dict (``features.N.*``, ``classifier.N.*``: the
layout of torchvision's ``vgg19-dcbb9e9d.pth``, built here by hand since torchvision is not
needed), reads the image as minicnn does (shorter side to 224 px, bicubic, centre crop),
normalizes it with torchvision's ImageNet mean and std, explains the top class with Captum —
``Saliency``, ``NoiseTunnel(Saliency)`` (25 samples, sigma 0.15, 5 samples a batch) or
``IntegratedGradients`` (50 steps from black, the midpoint rule, 10 steps a batch) — and writes
what the minicnn command writes for one method: a figure of the image and its map
(Captum's ``visualize_image_attr``, matplotlib) and the attribution as ``.npz``. Two threads,
as on this project's 2-core benchmark machine. For ``python -m minicnn.bench --commands``
only, which runs it as a script; minicnn never imports it.
"""
import argparse
import os

import numpy as np
import torch
from PIL import Image

VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGG19Net(torch.nn.Module):
    """torchvision's VGG19 layout: ``features``, 7x7 average pool, ``classifier``."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for v in VGG19:
            if v == "M":
                layers.append(torch.nn.MaxPool2d(2, 2))
            else:
                layers += [torch.nn.Conv2d(channels, v, 3, padding=1), torch.nn.ReLU(inplace=True)]
                channels = v
        self.features = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(512 * 7 * 7, 4096), torch.nn.ReLU(True), torch.nn.Dropout(),
            torch.nn.Linear(4096, 4096), torch.nn.ReLU(True), torch.nn.Dropout(), torch.nn.Linear(4096, 1000))

    def forward(self, x):
        x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        return self.classifier(torch.flatten(self.features(x), 1))


def image(path, size=224):
    img = Image.open(path).convert("RGB")
    scale = size / min(img.size)
    new = (max(size, round(img.width * scale)), max(size, round(img.height * scale)))
    img = img.resize(new, Image.BICUBIC, reducing_gap=None)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("image")
    parser.add_argument("--method", choices=["vanilla", "smoothgrad", "integrated"], default="vanilla")
    parser.add_argument("--outdir", default=".")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = VGG19Net()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    x = image(args.image)
    with torch.no_grad():
        target = int(model(x).argmax())
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
    if args.method == "vanilla":
        attr = Saliency(model).attribute(x, target=target, abs=False)
    elif args.method == "smoothgrad":
        attr = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=25, stdevs=0.15,
                                                      nt_samples_batch_size=5, target=target, abs=False)
    else:
        attr = IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=50,
                                                    method="riemann_middle", internal_batch_size=10)
    attr = attr.detach()[0].permute(1, 2, 0).numpy()
    stem = os.path.join(args.outdir, os.path.splitext(os.path.basename(args.image))[0] + "_" + args.method)
    np.savez_compressed(stem + ".npz", attribution=attr, target=target)
    import matplotlib
    matplotlib.use("Agg")
    from captum.attr import visualization
    fig, _ = visualization.visualize_image_attr_multiple(
        attr, x[0].permute(1, 2, 0).numpy(), ["original_image", "heat_map"], ["all", "absolute_value"],
        show_colorbar=True, use_pyplot=False)
    fig.savefig(stem + ".png", dpi=100)
    print(f"class {target}: wrote {stem}.npz, {stem}.png")


if __name__ == "__main__":
    main()
