"""Synthetic stimuli for probing units: curves, straight lines, edges, and controls.

Every stimulus is an RGB image (3, size, size) in [0, 1]: a stroke or shape of colour ``fg`` on
a plain background ``bg`` (by default dark on light, as in Cammarata et al. 2020, "Curve
Detectors", Distill), placed so that it passes through ``center`` (row, col: the receptive-field
centre of the unit being probed). Rendered at 4x and averaged down, so strokes are anti-aliased.

Orientation convention, in image coordinates (x to the right, y downwards): ``angle`` a
(degrees) is the direction the curve *bulges* towards. The arc's circle has its centre at
``center - radius * (cos a, sin a)``, so the arc's outside faces a: a = 90 is the bottom of a
circle, a "U". A line at angle a is that arc's tangent at ``center`` (perpendicular to a), an
arc of infinite radius; a line's angle only matters modulo 180 degrees.
"""
import numpy as np

BACKGROUND, STROKE = 0.9, 0.1
SUPER = 4


def _grid(size):
    c = (np.arange(size * SUPER) + 0.5) / SUPER - 0.5        # pixel-centre coordinates
    return np.meshgrid(c, c, indexing="xy")                  # X (columns), Y (rows)


DARK_ON_LIGHT = (STROKE, BACKGROUND)
LIGHT_ON_DARK = (BACKGROUND, STROKE)


def _render(mask_fn, size, fg, bg):
    X, Y = _grid(size)
    cover = mask_fn(X, Y).astype(np.float64)
    alpha = cover.reshape(size, SUPER, size, SUPER).mean(axis=(1, 3))
    fg = np.broadcast_to(np.asarray(fg, dtype=np.float64), (3,))[:, None, None]
    bg = np.broadcast_to(np.asarray(bg, dtype=np.float64), (3,))[:, None, None]
    return (bg * (1 - alpha) + fg * alpha).astype(np.float32)


def arc(size, center, radius, angle, thickness, length, fg=STROKE, bg=BACKGROUND):
    """An arc of a circle of ``radius`` through ``center``, bulging towards ``angle`` degrees,
    ``length`` px long (measured along the curve), ``thickness`` px wide."""
    a = np.deg2rad(angle)
    cx, cy = center[1] - radius * np.cos(a), center[0] - radius * np.sin(a)
    half = min(np.pi, length / (2 * radius))

    def mask(X, Y):
        r = np.hypot(X - cx, Y - cy)
        phi = np.arctan2(Y - cy, X - cx)
        dphi = np.angle(np.exp(1j * (phi - a)))             # angle from the arc's midpoint
        return (np.abs(r - radius) <= thickness / 2) & (np.abs(dphi) <= half)
    return _render(mask, size, fg, bg)


def line(size, center, angle, thickness, length, fg=STROKE, bg=BACKGROUND):
    """A straight segment through ``center``, perpendicular to ``angle`` (an arc of radius
    infinity with the same orientation convention)."""
    a = np.deg2rad(angle)
    nx, ny = np.cos(a), np.sin(a)                            # the normal

    def mask(X, Y):
        dx, dy = X - center[1], Y - center[0]
        across = dx * nx + dy * ny
        along = -dx * ny + dy * nx
        return (np.abs(across) <= thickness / 2) & (np.abs(along) <= length / 2)
    return _render(mask, size, fg, bg)


def edge(size, center, angle, fg=STROKE, bg=BACKGROUND):
    """A step edge through ``center``: ``fg`` behind, ``bg`` on the side ``angle`` points to."""
    a = np.deg2rad(angle)

    def mask(X, Y):
        return (X - center[1]) * np.cos(a) + (Y - center[0]) * np.sin(a) <= 0
    return _render(mask, size, fg, bg)


def blank(size, bg=BACKGROUND):
    return np.full((3, size, size), bg, dtype=np.float32)


def noise(size, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (3, size, size)).astype(np.float32)
