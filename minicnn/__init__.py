"""minicnn: a from-scratch, readable CNN (NumPy, optional CuPy + CUDA) that shows what a CNN sees.

From Python (see minicnn/api.py and the README's "From Python"):

    import minicnn
    net = minicnn.load_model()                      # the shipped world model
    net.predict("examples/face.png")
    minicnn.explain(net, "examples/face.png", method="smoothgrad").plot()
    minicnn.maximize(net, "conv3_1:0-3", steps=128).plot()

The commands: python -m minicnn (a list), python -m minicnn.saliency, .visualize, ...
"""
__version__ = "0.2.0"

from .api import Explanation, Visualization, explain, load_model, maximize  # noqa: E402
from .errors import MinicnnError  # noqa: E402
from .images import load_image, load_images  # noqa: E402

__all__ = ["Explanation", "MinicnnError", "Visualization", "__version__", "explain", "load_image",
           "load_images", "load_model", "maximize"]
