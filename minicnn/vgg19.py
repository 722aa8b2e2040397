"""VGG-style networks, the VGG19 and VGG16 architectures, and their layer names and aliases.

VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition") is a stack of blocks, each a few 3x3 convolutions (pad 1, so the size is kept)
with ReLUs, closed by a 2x2 max-pool that halves the size; then fully connected layers.
VGG19 is configuration "E": blocks of 2, 2, 4, 4, 4 convolutions with 64..512 channels,
then fc6 (25088 -> 4096), fc7 (4096 -> 4096) and fc8 (4096 -> 1000). VGG16 is configuration
"D": blocks of 2, 2, 3, 3, 3 convolutions, the same classifier. HED's trunk (Xie & Tu 2015,
"Holistically-Nested Edge Detection") is VGG16's 13 convolutions with the first four pools
only: it stops at relu5_3, 1/16 of the input's side.

Names follow Caffe: conv{block}_{i}, relu{block}_{i}, pool{block}, flatten, fc6, relu6, ...
"""
import difflib
import os
import re

import numpy as np

from .errors import UsageError
from .network import Layer, Network

# Channels of each conv, block by block (configuration "E" of the paper).
VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG19_FC = (4096, 4096)
VGG19_INPUT = (3, 224, 224)
VGG19_CLASSES = 1000


def he_normal(rng, shape, fan_in, dtype=np.float32, draw_dtype=np.float32):
    """He et al. 2015's initialisation, w ~ N(0, 2 / fan_in): it keeps activations' scale
    through ReLUs. Drawn in ``draw_dtype`` and scaled in place (VGG19's fc6 alone is 411 MB in
    float32); the random copies of ``minicnn.curves`` draw in float64, as their published
    nulls were drawn."""
    w = rng.standard_normal(shape, dtype=draw_dtype)
    w *= draw_dtype(np.sqrt(2.0 / fan_in))
    return w.astype(dtype, copy=False)


def make_vgg(blocks, fc, num_classes, input_shape, seed=0, notop=False, dtype=np.float32, init=True,
             last_pool=True):
    """A VGG-style network with random (He-initialised) weights.

    blocks: channels of each 3x3 conv, grouped by block, e.g. ((8, 8), (16, 16));
    fc: widths of the hidden fully connected layers; input_shape: (C, H, W).
    ``notop=True`` stops after the last pool (the convolutional part only); ``last_pool=False``
    (with notop) leaves that pool out too, as HED's trunk does.
    He et al. 2015: w ~ N(0, 2 / fan_in) keeps activations' scale through ReLUs.
    """
    rng = np.random.default_rng(seed)
    C, H, W = input_shape
    layers = []

    def he(shape, fan_in):
        if not init:  # shapes only (e.g. to list the layers): zeros cost nothing until written
            return np.zeros(shape, dtype=dtype)
        return he_normal(rng, shape, fan_in, dtype)

    for b, widths in enumerate(blocks, start=1):
        for i, F in enumerate(widths, start=1):
            w = he((F, C, 3, 3), C * 9)
            layers.append(Layer(f"conv{b}_{i}", "conv", w=w, b=np.zeros(F, dtype), pad=1))
            layers.append(Layer(f"relu{b}_{i}", "relu"))
            C = F
        if b < len(blocks) or last_pool or not notop:
            layers.append(Layer(f"pool{b}", "pool", kernel=2, stride=2))
            H, W = H // 2, W // 2
    if not notop:
        layers.append(Layer("flatten", "flatten"))
        D = C * H * W
        first = len(blocks) + 1  # Caffe numbering: VGG19's 5 blocks are followed by fc6
        for k, width in enumerate(tuple(fc) + (num_classes,)):
            name = f"fc{first + k}"
            layers.append(Layer(name, "linear", w=he((width, D), D), b=np.zeros(width, dtype)))
            if k < len(fc):
                layers.append(Layer(f"relu{first + k}", "relu"))
            D = width
    return Network(layers, input_shape=tuple(input_shape))


def _imagenet_vgg(blocks, name, seed, notop, dtype, init):
    net = make_vgg(blocks, VGG19_FC, VGG19_CLASSES, VGG19_INPUT, seed=seed, notop=notop, dtype=dtype, init=init)
    net.meta["architecture"] = name
    net.class_names = None if notop else imagenet_classes()
    return net


def vgg19(seed=0, notop=False, dtype=np.float32, init=True):
    """Full-size VGG19 with random weights (load real ones with minicnn.weights)."""
    return _imagenet_vgg(VGG19_BLOCKS, "vgg19", seed, notop, dtype, init)


def vgg16(seed=0, notop=False, dtype=np.float32, init=True):
    """Full-size VGG16 with random weights (configuration D)."""
    return _imagenet_vgg(VGG16_BLOCKS, "vgg16", seed, notop, dtype, init)


def hed_trunk(seed=0, dtype=np.float32, init=True):
    """HED's trunk with random weights: VGG16's convolutions conv1_1 ... conv5_3, pools 1-4."""
    net = make_vgg(VGG16_BLOCKS, (), 0, VGG19_INPUT, seed=seed, notop=True, dtype=dtype, init=init,
                   last_pool=False)
    net.meta["architecture"] = "vgg16-hed"
    return net


def imagenet_classes():
    """The 1000 ImageNet class names in the index order shared by Keras and torchvision."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "imagenet_classes.txt")
    with open(path, encoding="utf-8") as f:
        names = [line.rstrip("\n") for line in f]
    assert len(names) == VGG19_CLASSES, path
    return names


# ------------------------------------------------------------------------------------------------
# Layer names and their aliases
#
# minicnn's own names are Caffe's (conv3_3, relu3_3, pool3, fc6, ...). The same layers are known
# elsewhere as Keras' block3_conv3 / block3_pool / fc1 / fc2 / predictions and torchvision's
# features.14 / classifier.0 / .3 / .6; a bare integer N is torchvision's features[N]
# ("VGG19 layer 14" = features.14 = conv3_3). Because minicnn's layer list has the same order as
# torchvision's ``features`` (conv, relu, ..., pool), features[N] is simply the N-th layer.

_KERAS_CONV = re.compile(r"^block(\d+)_conv(\d+)$")
_KERAS_POOL = re.compile(r"^block(\d+)_pool$")


def aliases(net, name):
    """Other names of layer ``name``: [keras, torchvision] where they exist."""
    out = []
    m = re.match(r"^conv(\d+)_(\d+)$", name)
    if m:
        out.append(f"block{m.group(1)}_conv{m.group(2)}")
    m = re.match(r"^pool(\d+)$", name)
    if m:
        out.append(f"block{m.group(1)}_pool")
    linears = [layer.name for layer in net.layers if layer.kind == "linear"]
    if name in linears:
        k = linears.index(name)
        out.append("predictions" if k == len(linears) - 1 else f"fc{k + 1}")
        out.append(f"classifier.{3 * k}")
    position = net.position(name)
    flatten = net.flatten_index
    if position < flatten:
        out.append(f"features.{position}")
    elif net.layers[position].kind == "relu":
        k = sum(1 for layer in net.layers[flatten:position] if layer.kind == "linear") - 1
        out.append(f"classifier.{3 * k + 1}")
    return out


def find_layer(net, name):
    """``resolve_layer`` for names from a user (a command line, a notebook): an unknown name is a
    UsageError (one line, with suggestions) instead of a KeyError."""
    try:
        return resolve_layer(net, name)
    except KeyError as e:
        raise UsageError(str(e).strip("'\"")) from None


def resolve_layer(net, name):
    """minicnn's name for a layer given by any accepted name; raises KeyError listing them.

    Accepted: minicnn/Caffe names (conv3_3, relu3_3, pool3, fc6), Keras names (block3_conv3,
    block3_pool, fc1, fc2, predictions), torchvision names (features.14, classifier.0/.3/.6;
    classifier.1/.2 give relu6, as dropout is the identity at inference) and a bare integer N
    (= features.N).
    """
    name = str(name).strip()
    if name in net.index:
        return name
    m = re.match(r"^(?:features\.)?(\d+)$", name)
    if m:
        n = int(m.group(1))
        if n < net.flatten_index:
            return net.layers[n].name
        raise KeyError(f"features.{n} does not exist: the convolutional part has layers "
                       f"0..{net.flatten_index - 1}")
    m = _KERAS_CONV.match(name)
    if m and f"conv{m.group(1)}_{m.group(2)}" in net.index:
        return f"conv{m.group(1)}_{m.group(2)}"
    m = _KERAS_POOL.match(name)
    if m and f"pool{m.group(1)}" in net.index:
        return f"pool{m.group(1)}"
    linears = [layer.name for layer in net.layers if layer.kind == "linear"]
    relus_after = {linears[k]: next((layer.name for layer in net.layers[net.position(linears[k]) + 1:]
                                     if layer.kind == "relu"), None) for k in range(len(linears) - 1)}
    if name == "predictions" and linears:
        return linears[-1]
    m = re.match(r"^fc(\d+)$", name)
    if m and 1 <= int(m.group(1)) < len(linears):  # Keras' fc1, fc2 (minicnn's fc6, fc7 on VGG19)
        return linears[int(m.group(1)) - 1]
    m = re.match(r"^classifier\.(\d+)$", name)
    if m:
        k, r = divmod(int(m.group(1)), 3)
        if k < len(linears) and (r == 0 or k < len(linears) - 1):
            return linears[k] if r == 0 else relus_after[linears[k]]
    close = difflib.get_close_matches(name, net.names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise KeyError(f"unknown layer {name!r}; {hint}layers are: {', '.join(net.names)} "
                   "(Keras and torchvision names and a bare features index also work)")
