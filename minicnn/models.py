"""The built-in models: the small networks minicnn trains itself and ships in weights/.

Each has a procedural world (its dataset), a VGG-style architecture named like VGG19's layers,
its preprocessing and the training recipe that made the shipped file:

    world    64x64 objects made of parts (minicnn.world), 10 classes, 4 conv blocks   (default)
    shapes   32x32 one-piece shapes (minicnn.shapes), 8 classes, 3 conv blocks

    net = build("world", seed=0)           # random (He) weights, the architecture only
    images, labels, masks = dataset("world").make_dataset(100, seed=1)
"""
from dataclasses import dataclass, field

from . import shapes, world
from .preprocess import SHAPES
from .vgg19 import make_vgg

DEFAULT = "world"


@dataclass(frozen=True)
class BuiltIn:
    name: str
    world: object              # the dataset module: CLASSES, SIZE, make_dataset
    blocks: tuple              # conv channels per block; each block ends in a 2x2 max-pool
    fc: tuple                  # hidden linear layer widths
    preprocessing: dict
    recipe: dict = field(default_factory=dict)   # train()'s settings for the shipped weights

    @property
    def file(self):
        return f"{self.name}.h5"


MODELS = {
    "world": BuiltIn("world", world, ((16, 16), (32, 32), (64, 64), (128, 128)), (128,), SHAPES,
                     dict(epochs=5, train_size=20000, batch=64, lr=3e-3, weight_decay=0.05)),
    "shapes": BuiltIn("shapes", shapes, ((16, 16), (32, 32), (64,)), (64,), SHAPES,
                      dict(epochs=6, train_size=24000, batch=64, lr=4e-3, weight_decay=0.05)),
}


def build(name, seed=0):
    """Built-in model ``name`` with He-initialised weights (train it, or load the shipped file)."""
    spec = MODELS[name]
    size = spec.world.SIZE
    net = make_vgg(spec.blocks, spec.fc, len(spec.world.CLASSES), (3, size, size), seed=seed)
    net.class_names = list(spec.world.CLASSES)
    net.meta.update(architecture="custom", preprocessing=spec.preprocessing, model=name)
    return net


def dataset(name):
    """The dataset module (make_dataset, CLASSES, SIZE) of built-in model ``name``."""
    return MODELS[name].world


def builtin_of(net):
    """The built-in model whose classes ``net`` has (a shipped or retrained file), or None."""
    for spec in MODELS.values():
        if list(net.class_names or []) == list(spec.world.CLASSES):
            return spec
    return None
