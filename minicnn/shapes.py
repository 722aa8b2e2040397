"""A procedural image dataset: shapes on cluttered backgrounds, made on the fly, seeded.

Eight classes, three with curves (circle, ring, arc) and five with corners and straight edges
(square, triangle, star, cross, stripes). Each image draws one object with a random colour,
size, position and rotation over a textured, noisy background with a few distractors (short
line segments and specks in other colours). Shapes are rendered by geometry at 2x resolution
and averaged down, so edges are anti-aliased; the object's coverage is returned as its mask.

    images, labels, masks = make_dataset(1000, seed=0)   # (N, 3, 32, 32) float32 in [0, 1]

No download, no files: the same seed always gives the same images.
"""
import numpy as np

CLASSES = ("circle", "ring", "arc", "square", "triangle", "star", "cross", "stripes")
SIZE = 32            # image side in pixels
SUPERSAMPLE = 2      # render at 2x and average 2x2 blocks: anti-aliased edges


def _polygon_inside(u, v, vertices):
    """Even-odd rule: True where the point (u, v) is inside the polygon (vertices: (K, 2))."""
    inside = np.zeros(u.shape, dtype=bool)
    K = len(vertices)
    for k in range(K):
        (u1, v1), (u2, v2) = vertices[k], vertices[(k + 1) % K]
        crosses = (v1 > v) != (v2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            u_at = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
        inside ^= crosses & (u < u_at)
    return inside


def _regular(n, radius, phase=0.0):
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def shape_mask(name, u, v, R, rng):
    """Boolean coverage of shape ``name`` of radius R at object coordinates (u, v)."""
    r = np.hypot(u, v)
    if name == "circle":
        return r <= R
    if name == "ring":
        return (r <= R) & (r >= R * rng.uniform(0.5, 0.7))
    if name == "arc":  # a thick ring, cut to 140-230 degrees
        span = np.deg2rad(rng.uniform(140, 230))
        theta = np.mod(np.arctan2(v, u), 2 * np.pi)
        return (r <= R) & (r >= R * rng.uniform(0.55, 0.7)) & (theta <= span)
    if name == "square":
        half = R * 0.8
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if name == "triangle":
        return _polygon_inside(u, v, _regular(3, R * 1.1, np.pi / 2))
    if name == "star":
        outer, inner = _regular(5, R * 1.1, np.pi / 2), _regular(5, R * 0.45, np.pi / 2 + np.pi / 5)
        return _polygon_inside(u, v, np.stack([outer, inner], axis=1).reshape(10, 2))
    if name == "cross":
        arm = R * rng.uniform(0.25, 0.35)
        return ((np.abs(u) <= arm) & (np.abs(v) <= R)) | ((np.abs(v) <= arm) & (np.abs(u) <= R))
    if name == "stripes":  # three or four parallel bars filling a square
        half, bars = R * 0.85, rng.integers(3, 5)
        period = 2 * half / (2 * bars - 1)
        return (np.abs(u) <= half) & (np.abs(v) <= half) & (np.floor((u + half) / period) % 2 == 0)
    raise ValueError(f"unknown shape {name!r}; shapes are: {', '.join(CLASSES)}")


def downsample(a, s=SUPERSAMPLE):
    """Average every s x s block of the last two axes: a drawing at s times the size -> an
    anti-aliased image (shapes and the world are drawn this way)."""
    H, W = a.shape[-2] // s, a.shape[-1] // s
    return a.reshape(a.shape[:-2] + (H, s, W, s)).mean(axis=(-3, -1))


def _background(rng, size):
    """A base colour, a linear gradient, blotches of smooth noise and pixel noise."""
    base = rng.uniform(0.1, 0.9, size=3)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    direction = rng.normal(size=2)
    gradient = (direction[0] * xx + direction[1] * yy) * rng.uniform(0.0, 0.3)
    coarse = rng.normal(0, 1, size=(3, 5, 5))   # smooth noise: a 5x5 grid, bilinearly upsampled
    t = np.linspace(0, 4, size)
    i0 = np.minimum(t.astype(int), 3)
    f = t - i0
    rows = coarse[:, i0] * (1 - f)[None, :, None] + coarse[:, i0 + 1] * f[None, :, None]
    smooth = rows[:, :, i0] * (1 - f) + rows[:, :, i0 + 1] * f
    blotches = smooth * rng.uniform(0.0, 0.06)
    noise = rng.normal(0, rng.uniform(0.01, 0.05), size=(3, size, size))
    return base[:, None, None] + gradient[None] + blotches + noise


def _far_colour(rng, avoid, min_distance=0.35):
    """A random colour at least ``min_distance`` (mean abs difference) away from ``avoid``."""
    for _ in range(100):
        c = rng.uniform(0, 1, size=3)
        if np.abs(c - avoid).mean() >= min_distance:
            return c
    return 1.0 - avoid


def render(label, rng, size=SIZE):
    """One image (3, size, size) in [0, 1] with an object of class ``label``, and its mask."""
    big = size * SUPERSAMPLE
    coords = (np.arange(big) + 0.5) / SUPERSAMPLE  # pixel centres, in output-pixel units
    Y, X = np.meshgrid(coords, coords, indexing="ij")
    image = _background(rng, size)
    bg_mean = image.mean(axis=(1, 2))

    px = size / SIZE  # distractor sizes are given for 32x32 images; scale them with the image
    for _ in range(rng.integers(2, 6)):  # distractors: short segments and specks
        colour = _far_colour(rng, bg_mean, 0.25)
        cx, cy = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, np.pi)
        u = (X - cx) * np.cos(angle) + (Y - cy) * np.sin(angle)
        v = -(X - cx) * np.sin(angle) + (Y - cy) * np.cos(angle)
        if rng.random() < 0.6:
            cover = (np.abs(u) <= rng.uniform(2, 4) * px) & (np.abs(v) <= rng.uniform(0.4, 0.8) * px)
        else:
            cover = np.hypot(u, v) <= rng.uniform(0.7, 1.4) * px
        alpha = downsample(cover.astype(np.float64))
        image = image * (1 - alpha) + colour[:, None, None] * alpha

    R = rng.uniform(0.2, 0.36) * size
    cx, cy = rng.uniform(R + px, size - R - px, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    u = (X - cx) * np.cos(angle) + (Y - cy) * np.sin(angle)
    v = -(X - cx) * np.sin(angle) + (Y - cy) * np.cos(angle)
    alpha = downsample(shape_mask(CLASSES[label], u, v, R, rng).astype(np.float64))
    colour = _far_colour(rng, bg_mean)
    image = image * (1 - alpha) + colour[:, None, None] * alpha
    return np.clip(image, 0, 1).astype(np.float32), alpha >= 0.5


def make_dataset(n, seed=0, size=SIZE, labels=None):
    """``n`` images with balanced, shuffled labels: (images (n, 3, size, size) float32 in
    [0, 1], labels (n,) int64, masks (n, size, size) bool). Same seed, same data."""
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.permutation(np.arange(n) % len(CLASSES))
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = render(int(label), rng, size)
    return images, np.asarray(labels, dtype=np.int64), masks
