"""What a classifier says: class logits for a batch of images, probabilities, top classes, and
classes named by index or by name.
"""
import difflib
import re

import numpy as np

from .backend import to_device, to_numpy
from .checks import digits
from .errors import WeightsError



def softmax(logits):
    """Probabilities from logits along the last axis (shifted by the maximum: no overflow)."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def has_classifier(net):
    """True when ``net`` ends in class scores: class names and a linear layer (not a trunk)."""
    return net.class_names is not None and any(layer.kind == "linear" for layer in net.layers)


def require_classifier(net):
    """Raise a clear WeightsError if ``net`` has no class scores (a --notop file)."""
    if not has_classifier(net):
        where = net.meta.get("path", "this model")
        raise WeightsError(f"{where} has no classifier layers (a trunk, or a notop file): it can be used for "
                           "feature visualization of conv layers and saliency for a unit (--unit LAYER:CHANNEL), "
                           "not for class scores")


def check_finite(logits, net):
    """The network's class scores, refused when any is NaN or infinite: weights that are finite
    but large overflow float32 in the forward pass, and their probabilities would be NaN."""
    if not np.isfinite(to_numpy(logits)).all():
        where = net.meta.get("path", "this model")
        raise WeightsError(f"{where}: the network's output is not finite (NaN or infinity: its weights overflow "
                           "float32 in the forward pass); the weight file is broken")
    return logits


def classify(net, pixels, batch=32):
    """Class logits for RGB pixels (N, 3, H, W) in [0, 1], batched; returns numpy (N, K)."""
    require_classifier(net)
    out = []
    for i in range(0, len(pixels), batch):
        x = to_device(pixels[i:i + batch], net.device)
        with np.errstate(over="ignore", invalid="ignore"):   # said in one line by check_finite
            logits = net.forward(x)
        out.append(to_numpy(check_finite(logits, net)))
    return np.concatenate(out)


def top_k(net, logits, k):
    """[(class index, class name, probability), ...] for the k most probable classes."""
    p = softmax(logits)
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(c), net.class_names[c], float(p[c])) for c in order]


def resolve_class(spec, class_names):
    """A class index from an index or a name: exact (case-insensitive), else a unique whole-word
    match ("cat" is in "tabby cat", not in "catamaran"), else a unique prefix, else a unique
    substring. Ambiguous or unknown names raise ValueError listing candidates."""
    spec = str(spec).strip()
    if digits(spec[1:] if spec.startswith("-") else spec):
        index = int(spec)
        if not 0 <= index < len(class_names):
            raise ValueError(f"class index {index} is out of range 0..{len(class_names) - 1}")
        return index
    low = spec.lower()
    names = [c.lower() for c in class_names]
    word = re.compile(rf"(?<![a-z0-9]){re.escape(low)}(?![a-z0-9])")
    for rule in (lambda c: c == low, lambda c: bool(word.search(c)), lambda c: c.startswith(low), lambda c: low in c):
        hits = [i for i, c in enumerate(names) if rule(c)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            shown = ", ".join(f"{class_names[i]} ({i})" for i in hits[:10])
            more = f" and {len(hits) - 10} more" if len(hits) > 10 else ""
            raise ValueError(f"class {spec!r} is ambiguous: {shown}{more}")
    close = difflib.get_close_matches(low, names, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(class_names[names.index(c)] for c in close)}" if close else ""
    raise ValueError(f"unknown class {spec!r}{hint}")
