"""What a saliency map explains: a class score, or a unit inside the network.

A target is a class index (its logit, before the softmax) or a ``Unit``: one channel of a
layer (its mean over the positions of the map, Lucid's "channel" objective) or one neuron of
it (the channel at one position). A unit is what a trunk without a classifier can explain
("which pixels made this channel fire on this image?"), and what Captum's neuron and layer
attribution methods compute.

    p = net.run(pixels, until=until(targets))      # the logits, or the unit's layer
    s = scores(p.output, targets)                  # one score per image
    dpixels = p.backward(seed(p.output, targets))  # d (sum of the scores) / d pixels
"""
import re
from dataclasses import dataclass

from ..backend import get_xp
from ..errors import UsageError
from ..layers import one_hot


@dataclass(frozen=True)
class Unit:
    """Channel ``channel`` of layer ``layer``; with ``y`` and ``x``, the neuron at that position
    of the layer's map (row, column)."""
    layer: str
    channel: int
    y: int = None
    x: int = None

    def __str__(self):
        return f"{self.layer}:{self.channel}" + ("" if self.y is None else f"@{self.y},{self.x}")


UNIT = re.compile(r"^([^:@\s]+):([0-9]+)(?:@([0-9]+),([0-9]+))?$", re.ASCII)


def parse_unit(net, spec, input_shape=None):
    """A Unit from ``LAYER:CHANNEL`` or ``LAYER:CHANNEL@Y,X`` (any accepted layer name), each
    part checked against the network (and the map size at ``input_shape``)."""
    from ..vgg19 import find_layer
    m = UNIT.match(str(spec).strip())
    if m is None:
        raise UsageError(f"unit {str(spec)[:60]!r}: write LAYER:CHANNEL (a channel, e.g. conv5_3:12) or "
                         "LAYER:CHANNEL@Y,X (one neuron of its map, e.g. conv5_3:12@7,7)")
    layer = find_layer(net, m.group(1))
    kind = net.layer(layer).kind
    if kind == "flatten":
        raise UsageError(f"unit {spec}: {layer} is a flatten; name a conv, relu, pool or linear layer")
    shape = net.output_shape(layer, input_shape)
    channel = int(m.group(2))
    if channel >= shape[0]:
        raise UsageError(f"unit {spec}: {layer} has channels 0..{shape[0] - 1}")
    if m.group(3) is None:
        return Unit(layer, channel)
    if len(shape) != 3:
        raise UsageError(f"unit {spec}: {layer} has no map (a linear layer): name its channel only")
    y, x = int(m.group(3)), int(m.group(4))
    if y >= shape[1] or x >= shape[2]:
        raise UsageError(f"unit {spec}: {layer}'s map is {shape[1]}x{shape[2]} (rows and columns from 0)")
    return Unit(layer, channel, y, x)


def is_unit(target):
    return isinstance(target, Unit)


def until(targets):
    """The last layer the forward pass must run: the units' layer, or the whole network."""
    kinds = {is_unit(t) for t in targets}
    if kinds == {True}:
        layers = {t.layer for t in targets}
        if len(layers) > 1:
            raise ValueError(f"one batch explains units of one layer, not {sorted(layers)}")
        return layers.pop()
    if kinds == {True, False}:
        raise ValueError("one batch explains classes or units, not both")
    return None


def scores(out, targets):
    """The score of each image's target in ``out`` (the output of the layer ``until`` ran)."""
    xp = get_xp(out)
    rows = xp.arange(len(targets))
    if not is_unit(targets[0]):
        return out[rows, xp.asarray(targets)]
    channels = xp.asarray([t.channel for t in targets])
    if out.ndim == 2:
        return out[rows, channels]
    if targets[0].y is None:
        return out[rows, channels].mean(axis=(1, 2))
    return out[rows, channels, xp.asarray([t.y for t in targets]), xp.asarray([t.x for t in targets])]


def seed(out, targets):
    """d (sum over images of their scores) / d out: where the backward pass starts."""
    xp = get_xp(out)
    if not is_unit(targets[0]):
        return one_hot(xp.asarray(targets), out.shape[1], out.dtype)
    dout = xp.zeros_like(out)
    rows = xp.arange(len(targets))
    channels = xp.asarray([t.channel for t in targets])
    if out.ndim == 2:
        dout[rows, channels] = 1.0
    elif targets[0].y is None:
        dout[rows, channels] = 1.0 / (out.shape[2] * out.shape[3])     # the mean over positions
    else:
        dout[rows, channels, xp.asarray([t.y for t in targets]), xp.asarray([t.x for t in targets])] = 1.0
    return dout
