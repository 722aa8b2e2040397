"""One feature-visualization job, checked and run: what ``python -m minicnn.visualize`` and
``minicnn.maximize`` both call, so that the two make the same images and give the same errors.

    job = plan(net, "conv3_3:0-15")              # every input checked; nothing computed yet
    images, history, snapshots = run(net, job, steps=512)
"""
from dataclasses import dataclass, field

from ..checks import SEED_MAX, digits, real, whole
from ..errors import UsageError
from ..files import safe_part
from ..images import load_image
from . import objectives
from .param import PARAMS
from .render import render


@dataclass
class Job:
    """What to optimize: ``channels`` (indices; [None] for DeepDream), the objective, the
    parameterization, the image size and transforms, DeepDream's start image, and a label per
    tile (class names for a class model; None for DeepDream)."""
    layer: str
    channels: list
    objective: object
    param: object
    size: int
    transforms: list = field(repr=False)
    init: object = field(default=None, repr=False)
    labels: list = None
    name_parts: list = None      # the default output file name's parts


def default_setup(net, layer, size=None):
    """The defaults of a visualization of ``layer``: (size, transforms, L2 weight, linear).

    Conv layers: Lucent's 128 px (a quarter of 224's cost; twice a small model's input, at most
    128) and Lucid's standard transforms, no L2. Layers after the flatten (class models) need
    exactly the model's input size; they get small circular shifts and Simonyan et al.'s L2
    penalty (1e-3)."""
    from .transforms import Roll, standard_transforms
    linear = net.position(layer) >= net.flatten_index
    size = size or (net.input_shape[1] if linear else min(128, net.input_shape[1] * 2))
    if linear and size != net.input_shape[1]:
        raise UsageError(f"{layer} comes after the flatten: the image must be {net.input_shape[1]} px")
    if linear:
        return size, [Roll(max(1, size // 28))], 1e-3, True
    return size, standard_transforms(size), 0.0, False


def parse_channels(spec, count):
    """'5', '0-15', '1,4,9' or '0-3,8' -> a list of channel indices, each checked against the
    layer's ``count`` channels before any list is built (so '0-9999999999' costs nothing)."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("-") and digits(part[1:]):
            raise UsageError(f"channel {part} does not exist: channels are numbered 0..{count - 1}")
        lo, dash, hi = part.partition("-")
        if not digits(lo) or (dash and not digits(hi)):
            raise UsageError(f"bad channel {part!r} (use an index, a list 1,4,9 or a range 0-15)")
        lo, hi = int(lo), int(hi) if dash else int(lo)
        if lo > hi:
            raise UsageError(f"bad channel range {part!r} (use e.g. 0-15)")
        if hi >= count:
            raise UsageError(f"channel {hi} does not exist: the layer has channels 0..{count - 1}")
        out += list(range(lo, hi + 1))
        if len(out) > 256:
            raise UsageError("give between 1 and 256 channels")
    if not out:
        raise UsageError("give between 1 and 256 channels")
    return out


MEMORY_BOUND = 8 << 30      # bytes one render may ask for (from the shapes, before any work)
BYTES_PER_VALUE = 4 * 4     # float32; each activation kept on the tape, its gradient, and the
                            # transforms' and objective's copies, counted generously


def render_bytes(net, layer, size, n_images):
    """About how much memory a render of ``n_images`` images of ``size`` px to ``layer`` takes:
    every layer's output up to ``layer`` for each image, at BYTES_PER_VALUE each."""
    values = 3 * size * size + net.values_per_image(layer, (3, size, size))
    return n_images * values * BYTES_PER_VALUE


def plan(net, target, channels=None, neuron=False, source=None, size=None, param=None, transforms=True,
         l2=None, tv=0.0):
    """A checked Job for ``target`` "LAYER[:CHANNELS]" (any accepted layer name; channels as
    ``parse_channels`` reads them, here or in ``channels``), one image per channel; ``neuron``:
    the centre unit instead of the channel's mean; ``source``: an image file or array to start
    DeepDream from (the whole layer, no channel); ``param``: "fourier" (default) or "pixel"
    (the default with ``source``); ``transforms=False``: none; ``l2``, ``tv``: penalty
    weights (``l2`` None: the layer's default)."""
    from ..vgg19 import find_layer
    name, _, spec = str(target).partition(":")
    layer = find_layer(net, name)
    count = net.output_shape(layer)[0]
    if source is not None:
        if spec or channels:
            raise UsageError("DeepDream (--from) maximizes the whole layer: give no channel")
        chosen = [None]
    elif channels:
        if spec:
            raise UsageError("give the channels either as LAYER:CHANNEL or with --channels, not both")
        chosen = parse_channels(channels, count)
    elif spec:
        chosen = parse_channels(spec, count)
    else:
        raise UsageError(f"which channel? e.g. {name}:0, or --channels 0-15 for a grid")
    size = whole("size", size, 8, 1024, none_ok=True)
    l2 = None if l2 is None else real("l2", l2, 0, 1e6)
    tv = real("tv", tv, 0, 1e6)
    param = param or ("pixel" if source is not None else "fourier")
    if param not in PARAMS:
        raise UsageError(f"unknown parameterization {param!r}; known: {', '.join(sorted(PARAMS))}")
    size, steps_transforms, default_l2, linear = default_setup(net, layer, size)
    needed = render_bytes(net, layer, size, len(chosen))
    if needed > MEMORY_BOUND:
        raise UsageError(f"{len(chosen)} image{'s' if len(chosen) > 1 else ''} of {size} px through {layer} would take "
                         f"about {needed / 2 ** 30:.1f} GiB, over minicnn's bound of {MEMORY_BOUND >> 30} GiB; "
                         "ask for fewer channels at once or a smaller --size")
    if neuron and linear:
        raise UsageError("--neuron needs a convolutional layer")
    init = None
    if source is not None:
        if param != "pixel":
            raise UsageError("DeepDream (--from) changes a real image's pixels: use --param pixel")
        init = load_image(source, size)[None]
        objective = objectives.deepdream(layer)
    else:
        objective = (objectives.neuron if neuron else objectives.channel)(layer, chosen)
    l2 = default_l2 if l2 is None else l2
    if l2:
        objective = objective - l2 * objectives.l2()
    if tv:
        objective = objective - tv * objectives.tv()
    classes = net.class_names if net.position(layer) == len(net.layers) - 1 and net.class_names else None
    labels = None if source is not None else [f"{c} {classes[c]}" if classes else f"{layer}:{c}" for c in chosen]
    parts = [layer, "dream" if source is not None else (channels or spec).replace(",", "_")]
    if classes and len(chosen) == 1:                 # a class model: its name in the file name
        parts.append(safe_part(classes[chosen[0]], fallback="class"))
    return Job(layer, chosen, objective, PARAMS[param](), size, steps_transforms if transforms else [],
               init, labels, parts)


def run(net, job, steps=512, lr=0.05, seed=0, optimizer="adam", redirect_relu=True, blur_every=0,
        progress=None, snapshot_every=0, interruptible=False):
    """Render the job: (images (N, 3, size, size), the mean objective after each step,
    snapshots). See ``render`` for the loop. Every number is checked first."""
    steps = whole("steps", steps, 1, 100_000)
    lr = real("lr", lr, 0, 100, low_open=True)
    seed = whole("seed", seed, 0, SEED_MAX)
    blur_every = whole("blur_every", blur_every, 0, 100_000)
    if optimizer not in ("adam", "sgd"):
        raise UsageError(f"unknown optimizer {optimizer!r}; known: adam, sgd")
    return render(net, job.objective, job.param, steps=steps, lr=lr, seed=seed, transforms=job.transforms,
                  size=job.size, n_images=len(job.channels), blur_every=blur_every, optimizer=optimizer,
                  redirect_relu=redirect_relu, init=job.init, progress=progress,
                  snapshot_every=snapshot_every, interruptible=interruptible)
