"""A network: an ordered list of named layers, run forward to any layer and backward from it.

    net = Network([Layer("conv1", "conv", w=..., b=..., pad=1), Layer("relu1", "relu"), ...])
    logits = net.forward(pixels)             # inference: nothing kept
    p = net.run(pixels, until="conv1")       # a Pass: p.output, and the tape for one backward
    dpixels = p.backward(dact)               # d(score)/d pixels, where dact = d(score)/d(p.output)
    grads = {}
    p.backward(dact, grads=grads)            # also fills grads["conv1"] = (dw, db) ...

The tape belongs to the pass, not to the network: a network holds only its layers, its
preprocessing and its engine, and serves any number of passes (and threads) at once. The
model's preprocessing is part of it: callers give RGB pixels in [0, 1] and get gradients with
respect to those pixels. Layers run on ``net.engine`` (``minicnn.fast``: the CPU engine, or the
CUDA kernels after ``net.to("cuda")``; ``Reference()`` runs the textbook layers).
"""
from dataclasses import dataclass, field

import numpy as np

from . import layers as L
from .backend import device_of, to_device
from .fast.cpu import CPU
from .fast.memory import keep_freed_memory
from .preprocess import preprocess, preprocess_backward


KINDS = ("conv", "relu", "pool", "flatten", "linear")


@dataclass
class Layer:
    """One named layer: its kind, its parameters (conv and linear) and its settings.

    ``kept`` is where an engine may keep work that depends on the weights alone (the Winograd
    filter transforms of ``minicnn.fast``): a dict while the weights are frozen
    (``Network.freeze``), None otherwise. Giving the layer new weights drops it."""
    name: str
    kind: str
    w: object = None          # conv: (F, C, KH, KW); linear: (out, in)
    b: object = None          # (F,) or (out,)
    stride: int = 1           # conv and pool
    pad: int = 0              # conv
    kernel: int = 2           # pool
    kept: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name!r}: unknown kind {self.kind!r}, expected one of {KINDS}")
        if self.kind in ("conv", "linear") and (self.w is None or self.b is None):
            raise ValueError(f"layer {self.name!r}: a {self.kind} layer needs w and b")

    def __setattr__(self, name, value):
        if name in ("w", "b"):
            object.__setattr__(self, "kept", None)     # what was kept belonged to the old weights
        object.__setattr__(self, name, value)


def engine_for(device):
    """The default engine of a device: ``fast.cpu.CPU()`` for 'cpu', ``fast.cuda.Kernels()``
    for 'cuda' (imported only then: it compiles the CUDA kernels on first use)."""
    if device == "cuda":
        from .fast.cuda import Kernels
        return Kernels()
    return CPU()


class Reference:
    """An engine that runs every layer with the textbook functions of ``minicnn.layers``
    (slow: for checking the fast engines, and for reading). ``net.engine = Reference()``."""
    device = "any"

    def __repr__(self):
        return "Reference()"

    @staticmethod
    def conv2d_forward(x, w, b, stride=1, pad=0, kept=None):
        return L.conv2d_forward(x, w, b, stride, pad)

    @staticmethod
    def conv2d_backward(dout, cache, param_grads=True, input_grad=True, kept=None):
        dx, dw, db = L.conv2d_backward(dout, cache)
        return (dx if input_grad else None,) + ((dw, db) if param_grads else (None, None))

    relu_forward = staticmethod(L.relu_forward)
    relu_backward = staticmethod(L.relu_backward)
    maxpool2d_forward = staticmethod(L.maxpool2d_forward)
    maxpool2d_backward = staticmethod(L.maxpool2d_backward)


class Network:
    """Ordered, named layers. Forward to any layer, backward from it to the input."""

    def __init__(self, layers, input_shape=None, class_names=None, meta=None):
        self.layers = list(layers)
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"layer names must be unique: {names}")
        self.index = {name: i for i, name in enumerate(names)}
        self.input_shape = input_shape      # (C, H, W) the network was built for, if known
        self.class_names = class_names
        self.meta = dict(meta or {})
        self.engine = engine_for("cpu")     # how layers run: fast.cpu.CPU, fast.cuda.Kernels, Reference
        self.frozen = False                 # weights read-only (freeze): set by freeze / unfreeze

    # -- naming ---------------------------------------------------------------------------------

    @property
    def names(self):
        return [layer.name for layer in self.layers]

    def layer(self, name):
        return self.layers[self.position(name)]

    def position(self, name):
        """Index of a layer by name; an unknown name is a KeyError that lists the valid ones."""
        try:
            return self.index[name]
        except KeyError:
            import difflib
            close = difflib.get_close_matches(str(name), self.names, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise KeyError(f"unknown layer {name!r}; {hint}layers are: {', '.join(self.names)}") from None

    @property
    def flatten_index(self):
        """Position of the first flatten or linear layer (the end of the convolutional part),
        or the number of layers when there is none (a trunk)."""
        return next((i for i, layer in enumerate(self.layers) if layer.kind in ("flatten", "linear")),
                    len(self.layers))

    @property
    def device(self):
        for layer in self.layers:
            if layer.w is not None:
                return device_of(layer.w)
        return "cpu"

    def to(self, device):
        """Move every parameter to 'cpu' or 'cuda' once (forward/backward then stay there)."""
        for layer in self.layers:
            if layer.w is not None:
                layer.w = to_device(layer.w, device)
                layer.b = to_device(layer.b, device)
        self.engine = engine_for(device)        # on the GPU the CUDA kernels take over
        if self.frozen and device == "cpu":
            self.freeze()                       # the new NumPy arrays too
        return self

    # -- frozen weights -------------------------------------------------------------------------

    def freeze(self):
        """Make every weight array read-only (NumPy's ``writeable`` flag); returns the network.

        Weights that cannot change let the work that depends on them alone be done once: the
        Winograd filter transforms are then kept from their second use on (a job of one pass holds none),
        in each conv layer's ``kept`` (``fast.winograd.kept_filter_transform``), which dies with
        the layer. Networks loaded from a file come frozen;
        ``training.train`` unfreezes. A weight array that views another one's memory is copied
        first, so that nothing else can write it. (On a GPU there is no such flag: CuPy arrays
        stay writable and are transformed on every call.)
        """
        for layer, name, a in self._host_weights():
            if a.base is not None:
                a = a.copy()
                setattr(layer, name, a)
            a.flags.writeable = False
        for layer in self.layers:
            if layer.kind == "conv" and isinstance(layer.w, np.ndarray) and layer.kept is None:
                layer.kept = {}
        self.frozen = True
        return self

    def unfreeze(self):
        """Make the weights writable again (to train or edit them); returns the network."""
        for layer in self.layers:
            layer.kept = None                           # the weights may change from now on
        for layer, name, a in self._host_weights():
            if not a.flags.writeable:
                try:
                    a.flags.writeable = True
                except ValueError:                      # read-only memory it does not own
                    setattr(layer, name, a.copy())
        self.frozen = False
        return self

    def _host_weights(self):
        """(layer, "w" or "b", array) for every NumPy parameter array (CuPy ones have no flags)."""
        return [(layer, name, getattr(layer, name)) for layer in self.layers for name in ("w", "b")
                if isinstance(getattr(layer, name), np.ndarray)]

    # -- forward and backward -------------------------------------------------------------------

    @property
    def preprocessing(self):
        """What the model does to RGB pixels in [0, 1] before its first layer (the weights'
        source's convention, ``minicnn.preprocess``), or None: the input is given as the first
        layer takes it (networks built by hand)."""
        return self.meta.get("preprocessing")

    def run(self, pixels, until=None, keep=(), record=True, engine=None):
        """One forward pass on pixels (N, 3, H, W), up to and including layer ``until``: a ``Pass``.

        The pixels go through the model's ``preprocessing`` first, and the pass's backward
        returns d score / d pixels. ``keep`` (layer names): their outputs come back in
        ``Pass.activations``. ``record=False`` (inference) keeps no tape: each cache is dropped
        as soon as its layer is done, so memory holds about two activations at a time.
        ``engine`` runs this pass on another engine than ``self.engine`` (a worker thread's).
        The network itself is not changed: it can serve several passes, and threads, at once.
        """
        keep_freed_memory()                     # big activations reuse freed pages (minicnn.fast.memory)
        last = len(self.layers) - 1 if until is None else self.position(until)
        engine = engine or self.engine
        prep = self.preprocessing
        x = pixels if prep is None else preprocess(pixels, prep)
        tape, activations, keep = [], {}, keep or ()
        for layer in self.layers[:last + 1]:
            x, cache = _forward_one(engine, layer, x)
            if record:
                tape.append((layer, cache))
            del cache
            if layer.name in keep:
                activations[layer.name] = x
        return Pass(x, activations, tape if record else None, engine, prep)

    def forward(self, pixels, until=None):
        """The output of layer ``until`` (default: the last) for pixels (N, 3, H, W); nothing is
        kept for a backward pass (``run`` keeps it)."""
        return self.run(pixels, until, record=False).output

    # -- from Python: call, predict, summary -------------------------------------------------

    def __call__(self, pixels):
        """Logits (or the last layer's output) for a batch of pixels (N, 3, H, W); nothing is
        recorded for a backward pass."""
        return self.forward(pixels)

    def predict(self, images, top=5):
        """The ``top`` classes of each image: [(index, name, probability), ...] for one image,
        a list of those for a list. Images: paths, PIL images, HWC uint8 or CHW [0, 1] float
        arrays (see minicnn.images.load_image)."""
        from .classify import classify, top_k
        from .errors import UsageError
        from .images import is_batch, load_images
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise UsageError(f"top must be a whole number of classes, at least 1, not {top!r}")
        single = not is_batch(images)
        pixels = load_images(images, self.input_shape[1])
        rows = [top_k(self, logits, int(top)) for logits in classify(self, pixels)]
        return rows[0] if single else rows

    def summary(self):
        """A table of the layers: output shapes, parameters, receptive fields (print it, or let
        Jupyter show it)."""
        return Summary(self)

    # -- parameters -----------------------------------------------------------------------------

    def params(self):
        """(name, layer) for every layer that has parameters, in order."""
        return [(layer.name, layer) for layer in self.layers if layer.w is not None]

    def receptive_field(self, name):
        """(size, stride, offset) of one unit of layer ``name``, in input pixels: the unit at
        output position i sees input rows offset + i*stride ... offset + i*stride + size - 1."""
        size, stride, offset = 1, 1, 0
        for layer in self.layers[:self.position(name) + 1]:
            if layer.kind == "conv":
                offset -= layer.pad * stride
                size += (layer.w.shape[2] - 1) * stride
                stride *= layer.stride
            elif layer.kind == "pool":
                size += (layer.kernel - 1) * stride
                stride *= layer.stride
            elif layer.kind in ("flatten", "linear"):
                return None  # a linear unit sees the whole image
        return size, stride, offset

    def values_per_image(self, until=None, input_shape=None):
        """How many numbers the layers' outputs hold for one image, up to and including layer
        ``until`` (default: all), at ``input_shape`` (default: the network's): what a pass
        keeps on its tape, the base of every memory estimate."""
        shape = tuple(input_shape or self.input_shape)
        last = len(self.layers) - 1 if until is None else self.position(until)
        total = 0
        for layer in self.layers[:last + 1]:
            shape = _shape_after(layer, shape)
            total += int(np.prod(shape))
        return total

    def output_shape(self, name, input_shape=None):
        """Shape (C, H, W) or (D,) of a layer's output for one image, computed without data."""
        shape = tuple(input_shape or self.input_shape)
        for layer in self.layers[:self.position(name) + 1]:
            shape = _shape_after(layer, shape)
        return shape


class Pass:
    """One forward pass of a network: its ``output``, the ``activations`` it was asked to keep,
    and (when recorded) its tape of caches, which one ``backward`` uses up.

        p = net.run(pixels, until="conv3_3", keep={"conv2_2"})
        score = p.output[:, 5].mean()
        dpixels = p.backward(dout)          # d score / d pixels, where dout = d score / d output
    """

    def __init__(self, output, activations, tape, engine, preprocessing):
        self.output, self.activations = output, activations
        self._tape, self._engine, self._prep = tape, engine, preprocessing

    def backward(self, dout, grads=None, relu=None, stop_at=None, inject=None, input_grad=True):
        """Propagate ``dout`` (d score / d output) back to the pixels: returns d score / d pixels.

        If ``grads`` is a dict, it is filled with ``grads[name] = (dw, db)`` for every conv and
        linear layer passed through; otherwise no parameter gradient is computed (saliency and
        feature visualization need only the pixels' gradient, and skipping dw halves a
        convolution's backward pass). ``relu``, a function ``(dout, out) -> dx``, replaces the
        true gradient of every ReLU: guided backprop's rule (saliency), the redirected ReLU
        (feature visualization). ``stop_at=NAME`` stops early and returns d score / d (output
        of layer NAME) instead (Grad-CAM). ``inject={NAME: g}`` adds g to the gradient arriving
        at the output of layer NAME (a score that also reads lower layers: the chain rule sums
        the paths). ``input_grad=False`` (training) skips the gradient of the input itself, and
        None is returned. Each cache is freed as soon as it is used: memory shrinks on the way
        back, and the tape is empty afterwards.
        """
        if not self._tape:
            raise RuntimeError("backward() needs a recorded pass (net.run(..., record=True)), used once")
        ran = [layer.name for layer, _ in self._tape]
        for name in [stop_at] + list(inject or ()):
            if name is not None and name not in ran:
                raise KeyError(f"{name!r}: not among the layers this pass ran")
        want_params = grads is not None
        tape, self._tape = self._tape, []
        for k in range(len(tape) - 1, -1, -1):
            layer, cache = tape.pop()           # the tape lets go of the cache ...
            if layer.name == stop_at:
                return dout
            if inject and layer.name in inject:
                dout = dout + inject[layer.name]
            dout, dw, db = _backward_one(self._engine, layer, dout, cache, want_params, relu,
                                         input_grad=input_grad or k > 0)
            del cache                           # ... and so does this loop: its memory is free now
            if want_params and dw is not None:
                grads[layer.name] = (dw, db)
        if dout is None or self._prep is None:
            return dout
        return preprocess_backward(dout, self._prep)


def _forward_one(ops, layer, x):
    if layer.kind == "conv":
        return ops.conv2d_forward(x, layer.w, layer.b, layer.stride, layer.pad, kept=layer.kept)
    if layer.kind == "relu":
        return ops.relu_forward(x)
    if layer.kind == "pool":
        return ops.maxpool2d_forward(x, layer.kernel, layer.stride)
    if layer.kind == "flatten":
        return L.flatten_forward(x)
    return L.linear_forward(x, layer.w, layer.b)


def _backward_one(ops, layer, dout, cache, param_grads, relu, input_grad=True):
    """Returns (dx, dw, db); dw and db are None for layers without parameters."""
    if layer.kind == "conv":
        return ops.conv2d_backward(dout, cache, param_grads=param_grads, input_grad=input_grad, kept=layer.kept)
    if layer.kind == "relu":
        return (ops.relu_backward(dout, cache) if relu is None else relu(dout, cache)), None, None
    if layer.kind == "pool":
        return ops.maxpool2d_backward(dout, cache), None, None
    if layer.kind == "flatten":
        return L.flatten_backward(dout, cache), None, None
    return L.linear_backward(dout, cache, param_grads=param_grads)


def _shape_after(layer, shape):
    if layer.kind == "conv":
        C, H, W = shape
        F, _, KH, KW = layer.w.shape
        return (F, L.conv_output_size(H, KH, layer.stride, layer.pad),
                L.conv_output_size(W, KW, layer.stride, layer.pad))
    if layer.kind == "pool":
        C, H, W = shape
        return (C, L.pool_output_size(H, layer.kernel, layer.stride), L.pool_output_size(W, layer.kernel, layer.stride))
    if layer.kind == "flatten":
        size = 1
        for s in shape:
            size *= s
        return (size,)
    if layer.kind == "linear":
        return (layer.w.shape[0],)
    return shape


class Summary:
    """``net.summary()``: a table of layers that prints itself."""

    def __init__(self, net):
        self.rows, total = [], 0
        for layer in net.layers:
            params = 0 if layer.w is None else int(layer.w.size + layer.b.size)
            total += params
            rf = net.receptive_field(layer.name)
            self.rows.append((layer.name, layer.kind, net.output_shape(layer.name), params, rf[0] if rf else "all"))
        self.total, self.input_shape = total, tuple(net.input_shape)

    def __str__(self):
        lines = [f"{'layer':10s} {'kind':8s} {'output (C, H, W)':18s} {'params':>11s} {'RF px':>6s}"]
        lines += [f"{n:10s} {k:8s} {str(s):18s} {p:11,d} {r:>6}" for n, k, s, p, r in self.rows]
        lines.append(f"total parameters: {self.total:,d}; input {self.input_shape}")
        return "\n".join(lines)

    __repr__ = __str__
