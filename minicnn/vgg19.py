"""VGG-style networks, and the VGG19 architecture with its layer names and aliases.

VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
Recognition") is a stack of blocks, each a few 3x3 convolutions (pad 1, so the size is kept)
with ReLUs, closed by a 2x2 max-pool that halves the size; then fully connected layers.
VGG19 is configuration "E": blocks of 2, 2, 4, 4, 4 convolutions with 64..512 channels,
then fc6 (25088 -> 4096), fc7 (4096 -> 4096) and fc8 (4096 -> 1000).

Names follow Caffe: conv{block}_{i}, relu{block}_{i}, pool{block}, flatten, fc6, relu6, ...
"""
import numpy as np

from .network import Layer, Network

# Channels of each conv, block by block (configuration "E" of the paper).
VGG19_BLOCKS = ((64, 64), (128, 128), (256, 256, 256, 256), (512, 512, 512, 512), (512, 512, 512, 512))
VGG19_FC = (4096, 4096)
VGG19_INPUT = (3, 224, 224)
VGG19_CLASSES = 1000


def make_vgg(blocks, fc, num_classes, input_shape, seed=0, notop=False, dtype=np.float32):
    """A VGG-style network with random (He-initialised) weights.

    blocks: channels of each 3x3 conv, grouped by block, e.g. ((8, 8), (16, 16));
    fc: widths of the hidden fully connected layers; input_shape: (C, H, W).
    ``notop=True`` stops after the last pool (the convolutional part only).
    He et al. 2015: w ~ N(0, 2 / fan_in) keeps activations' scale through ReLUs.
    """
    rng = np.random.default_rng(seed)
    C, H, W = input_shape
    layers = []

    def he(shape, fan_in):
        w = rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / fan_in))  # in place: VGG19's fc6 alone is 411 MB
        return w.astype(dtype, copy=False)

    for b, widths in enumerate(blocks, start=1):
        for i, F in enumerate(widths, start=1):
            w = he((F, C, 3, 3), C * 9)
            layers.append(Layer(f"conv{b}_{i}", "conv", w=w, b=np.zeros(F, dtype), pad=1))
            layers.append(Layer(f"relu{b}_{i}", "relu"))
            C = F
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


def vgg19(seed=0, notop=False, dtype=np.float32):
    """Full-size VGG19 with random weights (load real ones with minicnn.weights)."""
    net = make_vgg(VGG19_BLOCKS, VGG19_FC, VGG19_CLASSES, VGG19_INPUT, seed=seed, notop=notop, dtype=dtype)
    net.meta["architecture"] = "vgg19"
    return net
