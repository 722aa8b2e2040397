"""Figures: matplotlib without a display, written like every other file (minicnn.files).

Every figure minicnn draws is made with ``pyplot()`` and written with ``save_figure``.
"""
from .files import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend (draws to files; no window, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi=100):
    """Write a matplotlib figure as PNG atomically; close the figure either way."""
    try:
        with atomic_write(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        pyplot().close(fig)
