"""Figures without pyplot: matplotlib ``Figure`` objects, written like every other file.

minicnn never touches pyplot's global state or switches matplotlib's backend, so a notebook's
own ``plt.show()`` keeps working. Figures are made with ``new_figure`` / ``subplots`` (the
same arguments as pyplot's), written with ``save_figure`` (atomically, see minicnn.files) or
returned to the caller: a ``Figure`` displays itself inline in Jupyter.
"""
from .files import atomic_write


def new_figure(figsize=None, **kw):
    """A matplotlib Figure that belongs to no pyplot window."""
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, **kw)


def subplots(*args, figsize=None, **kw):
    """(figure, axes) like ``pyplot.subplots``, without pyplot."""
    fig = new_figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def save_figure(fig, path, dpi=100):
    """Write a Figure as PNG atomically."""
    with atomic_write(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")


def finish(fig, path=None, dpi=100):
    """Write ``fig`` to ``path`` when one is given; return it either way (Jupyter shows it)."""
    if path is not None:
        save_figure(fig, path, dpi)
    return fig
