"""A procedural world of objects made of parts: ten classes, 64x64 RGB, seeded, with masks.

The shapes world (``minicnn.shapes``) has one-piece classes, so a network trained on it has no
reason to learn parts. Here every class is an object **composed of named parts**, and the
parts are **shared across classes**, so no single part decides the class:

    class       parts
    face        head, eye (x2), mouth
    car         chassis, window (x2), wheel (x2)
    bicycle     wheel (x2), frame
    house       wall, roof, door, window (x2)
    clock       rim, dial, tick (x12), hand (x2)
    flower      petal (x5-8), centre, stem
    tree        trunk, canopy
    fish        fish_body, tail, eye
    snowman     snowball (x3), eye (x2)
    butterfly   wing (x4), spot, antenna

Shared parts (``SHARED_PARTS``): a *wheel* belongs to cars and bicycles, an *eye* to faces, fish
and snowmen, a *window* to cars and houses. Surfaces carry **textures** (brick, grass, wood,
water, dots, stripes) that also appear on other classes and on the backgrounds, so no texture
decides the class either. Each image varies position, scale, rotation, left/right pose,
colours, occlusion (a patch over part of the object) and clutter (1-3 loose parts, e.g. a lone
wheel or a lone eye, smaller than the object, which must not flip the class).

Every image comes with its masks: ``parts[i]`` is a (64, 64) map of part ids (0 = not the
object; ``PARTS[k - 1]`` names id k), so the object's mask is ``parts[i] > 0``. Parts and
textures can also be drawn **alone** as probe stimuli (``render_part``, ``render_texture``).

    images, labels, parts = make_dataset(1000, seed=0)   # (N, 3, 64, 64) float32 in [0, 1]

Rendering works at 2x resolution in the object's own frame (u, v: the object spans about
[-1, 1]), then averages 2x2 blocks, so edges are anti-aliased. No files: a seed is a dataset.
"""
import numpy as np

from .shapes import downsample

CLASSES = ("face", "car", "bicycle", "house", "clock", "flower", "tree", "fish", "snowman",
           "butterfly")
PARTS = ("head", "eye", "mouth", "chassis", "window", "wheel", "frame", "wall", "roof", "door",
         "rim", "tick", "hand", "petal", "centre", "stem", "trunk", "canopy", "fish_body", "tail",
         "snowball", "wing", "spot", "antenna", "dial")
SHARED_PARTS = ("wheel", "eye", "window")
TEXTURES = ("brick", "grass", "wood", "water", "dots", "stripes")
SIZE = 64            # image side in pixels
SUPERSAMPLE = 2      # render at 2x, then average 2x2 blocks


# ------------------------------------------------------------------------------------------------
# Textures: a pattern t in [0, 1] over the whole canvas, mixed between two colours.

def texture_pattern(name, rng, S):
    """(S, S) pattern in [0, 1] of texture ``name``, with random scale, phase and angle."""
    y, x = np.mgrid[0:S, 0:S].astype(np.float64) / S * 2   # the canvas spans [0, 2] in x and y
    angle = rng.uniform(-0.3, 0.3)
    if name == "stripes":
        angle = rng.uniform(0, np.pi)
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    if name == "brick":                # rows of bricks, every other row shifted by half a brick
        h = rng.uniform(0.1, 0.16)
        w = h * rng.uniform(1.8, 2.6)
        row = np.floor(v / h)
        shifted = u + (row % 2) * w / 2
        mortar = (np.mod(v, h) < 0.22 * h) | (np.mod(shifted, w) < 0.12 * w)
        return mortar.astype(np.float64)
    if name == "grass":                # short vertical blades of random heights
        # one blade per column `period` wide; each column looks up its height and its vertical
        # offset in a table of random heights, so neighbouring blades differ
        period = rng.uniform(0.035, 0.06)
        column = np.floor(u / period)
        heights = np.random.default_rng(rng.integers(2**31)).uniform(0.08, 0.2, size=4096)
        phase = heights[(column.astype(np.int64) * 7) % 4096]
        tip = np.mod(v + phase * 3, heights[column.astype(np.int64) % 4096])
        blade = np.abs(np.mod(u, period) / period - 0.5) < 0.25 * (1 - tip / 0.2)
        return blade.astype(np.float64)
    if name == "wood":                 # grain: wavy stripes with a slow drift
        period = rng.uniform(0.07, 0.12)
        wobble = 0.05 * np.sin(v * rng.uniform(4, 8) + rng.uniform(0, 6)) + 0.03 * np.sin(v * 19)
        return 0.5 + 0.5 * np.sin(2 * np.pi * (u + wobble) / period)
    if name == "water":                # horizontal ripples
        period = rng.uniform(0.08, 0.14)
        ripple = v + 0.04 * np.sin(u * rng.uniform(8, 14) + rng.uniform(0, 6))
        return (np.mod(ripple, period) < 0.3 * period).astype(np.float64)
    if name == "dots":                 # polka dots on a square lattice
        period = rng.uniform(0.12, 0.2)
        du = np.mod(u, period) - period / 2
        dv = np.mod(v, period) - period / 2
        return (np.hypot(du, dv) < rng.uniform(0.22, 0.35) * period).astype(np.float64)
    if name == "stripes":              # straight bars, any orientation
        period = rng.uniform(0.1, 0.2)
        return (np.mod(u, period) < period / 2).astype(np.float64)
    raise ValueError(f"unknown texture {name!r}; textures are: {', '.join(TEXTURES)}")


def _texture(name, rng, S, c1, c2):
    t = texture_pattern(name, rng, S)
    return c1[:, None, None] * (1 - t) + c2[:, None, None] * t      # (3, S, S)


# ------------------------------------------------------------------------------------------------
# Colours

def hsv(h, s, v):
    """One RGB colour from hue, saturation, value in [0, 1]."""
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _colour(rng, hue=None, sat=(0.4, 1.0), val=(0.35, 1.0)):
    h = rng.uniform(0, 1) if hue is None else (hue + rng.uniform(-0.05, 0.05)) % 1.0
    return hsv(h, rng.uniform(*sat), rng.uniform(*val))


def _darker(c, k=0.45):
    return c * k


# ------------------------------------------------------------------------------------------------
# The canvas: paints coverage masks in the object's frame, keeps the part map


class Canvas:
    """A (3, S, S) picture at 2x resolution and a part-id map of the same size."""

    def __init__(self, background):
        self.image = background                                   # (3, S, S)
        self.S = background.shape[-1]
        self.parts = np.zeros((self.S, self.S), dtype=np.uint8)   # 0 = not the object
        grid = (np.arange(self.S) + 0.5) / SUPERSAMPLE            # pixel centres, output px
        self.Y, self.X = np.meshgrid(grid, grid, indexing="ij")
        self.frame(self.S / SUPERSAMPLE / 2, self.S / SUPERSAMPLE / 2, self.S / SUPERSAMPLE / 2)

    def frame(self, cx, cy, R, angle=0.0, flip=False):
        """Set the drawing frame: centre (cx, cy) px, R px per unit, rotation, mirror image."""
        dx, dy = self.X - cx, self.Y - cy
        c, s = np.cos(angle), np.sin(angle)
        self.u = (c * dx + s * dy) / R * (-1 if flip else 1)
        self.v = (-s * dx + c * dy) / R
        self.R = R

    def paint(self, cover, paint, part=None):
        """Paint ``paint`` (an RGB colour or a (3, S, S) texture) where ``cover`` is True; record
        it as part ``part`` (a name in PARTS), or as not-the-object when ``part`` is None."""
        if paint.ndim == 1:
            paint = paint[:, None, None]
        self.image = np.where(cover[None], paint, self.image)
        self.parts[cover] = 0 if part is None else PARTS.index(part) + 1

    # coverage primitives, in frame units ---------------------------------------------------

    def disk(self, x, y, r):
        return (self.u - x) ** 2 + (self.v - y) ** 2 <= r * r

    def ring(self, x, y, r_out, r_in):
        d2 = (self.u - x) ** 2 + (self.v - y) ** 2
        return (d2 <= r_out * r_out) & (d2 >= r_in * r_in)

    def ellipse(self, x, y, a, b, angle=0.0):
        c, s = np.cos(angle), np.sin(angle)
        du, dv = self.u - x, self.v - y
        p, q = c * du + s * dv, -s * du + c * dv
        return (p / a) ** 2 + (q / b) ** 2 <= 1

    def rect(self, x0, y0, x1, y1):
        return (self.u >= x0) & (self.u <= x1) & (self.v >= y0) & (self.v <= y1)

    def bar(self, x0, y0, x1, y1, width):
        """A thick segment from (x0, y0) to (x1, y1)."""
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((self.u - x0) * dx + (self.v - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        return np.hypot(self.u - x0 - t * dx, self.v - y0 - t * dy) <= width / 2

    def polygon(self, vertices):
        """Even-odd rule over the vertices [(x, y), ...]."""
        inside = np.zeros(self.u.shape, dtype=bool)
        for k in range(len(vertices)):
            (x1, y1), (x2, y2) = vertices[k], vertices[(k + 1) % len(vertices)]
            crosses = (y1 > self.v) != (y2 > self.v)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = x1 + (self.v - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (self.u < x_at)
        return inside

    def arc(self, x, y, r, width, start, stop):
        """Part of a ring: angles (radians, v pointing down) from ``start`` to ``stop``."""
        theta = np.mod(np.arctan2(self.v - y, self.u - x) - start, 2 * np.pi)
        return self.ring(x, y, r + width / 2, r - width / 2) & (theta <= np.mod(stop - start, 2 * np.pi))


# ------------------------------------------------------------------------------------------------
# The parts. Each draws itself at (x, y) with size r in the current frame.


def draw_eye(cv, rng, x, y, r, sclera=None):
    """An eye: a light disk, a dark outline and a dark pupil looking a little aside."""
    sclera = np.array([0.95, 0.95, 0.92]) * rng.uniform(0.9, 1.0) if sclera is None else sclera
    cv.paint(cv.disk(x, y, r), np.array([0.08, 0.07, 0.06]), "eye")
    cv.paint(cv.disk(x, y, r * 0.8), sclera, "eye")
    look = rng.uniform(-0.25, 0.25, size=2) * r
    cv.paint(cv.disk(x + look[0], y + look[1], r * 0.45), _colour(rng, val=(0.0, 0.2)), "eye")


def draw_wheel(cv, rng, x, y, r):
    """A wheel: dark tyre, light rim, hub and spokes."""
    tyre = np.array([0.1, 0.1, 0.1]) * rng.uniform(0.5, 1.5)
    metal = np.array([0.75, 0.75, 0.78]) * rng.uniform(0.8, 1.1)
    cv.paint(cv.disk(x, y, r), tyre, "wheel")
    cv.paint(cv.disk(x, y, r * 0.62), metal * 0.85, "wheel")
    spokes = rng.integers(3, 7)
    phase = rng.uniform(0, np.pi)
    for k in range(spokes):
        a = phase + np.pi * k / spokes
        cv.paint(cv.bar(x - r * 0.6 * np.cos(a), y - r * 0.6 * np.sin(a),
                        x + r * 0.6 * np.cos(a), y + r * 0.6 * np.sin(a), r * 0.12), tyre * 2, "wheel")
    cv.paint(cv.disk(x, y, r * 0.2), metal, "wheel")


def draw_window(cv, rng, x, y, w, h):
    """A window: a light glass pane, a dark frame and a cross of glazing bars."""
    glass = _colour(rng, hue=rng.uniform(0.5, 0.62), sat=(0.2, 0.5), val=(0.75, 1.0))
    frame = _colour(rng, sat=(0.0, 0.3), val=(0.05, 0.3))
    cv.paint(cv.rect(x - w, y - h, x + w, y + h), frame, "window")
    cv.paint(cv.rect(x - w * 0.8, y - h * 0.8, x + w * 0.8, y + h * 0.8), glass, "window")
    t = min(w, h) * 0.14
    cv.paint(cv.rect(x - t, y - h, x + t, y + h) | cv.rect(x - w, y - t, x + w, y + t), frame, "window")


def _surface(rng, S, base, textures=TEXTURES, p=0.6):
    """A plain colour or, with probability p, a texture between ``base`` and a shade of it."""
    if rng.random() < p:
        name = textures[rng.integers(len(textures))]
        return _texture(name, rng, S, base, base * rng.uniform(0.35, 0.7))
    return base


# ------------------------------------------------------------------------------------------------
# The classes. Each draws its object in the current frame (the object spans about [-1, 1]).


def draw_face(cv, rng):
    skin = _colour(rng, sat=(0.2, 0.7), val=(0.55, 1.0))
    cv.paint(cv.disk(0, 0, 0.95), _darker(skin, 0.35), "head")
    cv.paint(cv.disk(0, 0, 0.86), _surface(rng, cv.S, skin, p=0.25), "head")
    for side in (-1, 1):
        draw_eye(cv, rng, side * 0.36, -0.22, rng.uniform(0.15, 0.19))
    smile = rng.uniform(-0.3, 0.3)
    cv.paint(cv.arc(0, 0.05, 0.45, 0.11, 0.35 + smile, np.pi - 0.35 - smile), _darker(skin, 0.3), "mouth")


def draw_car(cv, rng):
    paint = _colour(rng)
    body = _surface(rng, cv.S, paint, ("stripes", "dots", "wood"), p=0.3)
    cv.paint(cv.polygon([(-0.55, -0.05), (-0.35, -0.5), (0.35, -0.5), (0.6, -0.05)]), body, "chassis")
    cv.paint(cv.rect(-1.0, -0.1, 1.0, 0.35) & cv.disk(0, 0.1, 1.15), body, "chassis")
    for x in (-0.25, 0.27):
        draw_window(cv, rng, x, -0.27, 0.2, 0.17)
    r = rng.uniform(0.24, 0.3)
    for x in (-0.58, 0.58):
        draw_wheel(cv, rng, x, 0.35, r)


def draw_bicycle(cv, rng):
    r = rng.uniform(0.36, 0.42)
    for x in (-0.6, 0.6):
        draw_wheel(cv, rng, x, 0.3, r)
    tube = _colour(rng, val=(0.3, 0.9))
    w = rng.uniform(0.08, 0.11)
    rear, front, crank = (-0.6, 0.3), (0.6, 0.3), (-0.05, 0.3)
    seat, head = (-0.2, -0.3), (0.4, -0.3)
    for a, b in ((rear, seat), (seat, head), (rear, crank), (crank, seat), (crank, head), (head, front)):
        cv.paint(cv.bar(*a, *b, w), tube, "frame")
    cv.paint(cv.bar(-0.33, -0.38, -0.08, -0.38, w * 1.3), tube * 0.4, "frame")          # saddle
    cv.paint(cv.bar(0.4, -0.3, 0.45, -0.48, w) | cv.bar(0.3, -0.5, 0.58, -0.5, w), tube * 0.4, "frame")


def draw_house(cv, rng):
    wall = _colour(rng, sat=(0.2, 0.8), val=(0.5, 1.0))
    cv.paint(cv.rect(-0.72, -0.15, 0.72, 0.9), _surface(rng, cv.S, wall, ("brick", "wood", "stripes"), p=0.7), "wall")
    roof = _colour(rng, sat=(0.3, 0.9), val=(0.25, 0.7))
    cv.paint(cv.polygon([(-0.9, -0.1), (0.9, -0.1), (0, -0.9)]), roof, "roof")
    cv.paint(cv.rect(-0.16, 0.35, 0.16, 0.9), _colour(rng, val=(0.15, 0.5)), "door")
    for x in (-0.45, 0.45):
        draw_window(cv, rng, x, 0.25, 0.18, 0.17)


def draw_clock(cv, rng):
    cv.paint(cv.disk(0, 0, 0.95), _colour(rng, val=(0.2, 0.7)), "rim")
    cv.paint(cv.disk(0, 0, 0.8), _colour(rng, sat=(0.0, 0.25), val=(0.8, 1.0)), "dial")
    ink = _colour(rng, sat=(0.0, 0.5), val=(0.0, 0.25))
    for k in range(12):
        a = 2 * np.pi * k / 12
        length = 0.16 if k % 3 == 0 else 0.09
        cv.paint(cv.bar(0.72 * np.cos(a), 0.72 * np.sin(a), (0.72 - length) * np.cos(a),
                        (0.72 - length) * np.sin(a), 0.07), ink, "tick")
    for length, width in ((0.4, 0.1), (0.6, 0.06)):
        a = rng.uniform(0, 2 * np.pi)
        cv.paint(cv.bar(0, 0, length * np.cos(a), length * np.sin(a), width), ink, "hand")


def draw_flower(cv, rng):
    cv.paint(cv.bar(0, -0.2, 0.05 * rng.normal(), 1.0, 0.1), _colour(rng, hue=0.33, val=(0.3, 0.7)), "stem")
    petal = _colour(rng)
    n = rng.integers(5, 9)
    phase = rng.uniform(0, 2 * np.pi)
    for k in range(n):
        a = phase + 2 * np.pi * k / n
        cv.paint(cv.ellipse(0.42 * np.cos(a), -0.35 + 0.42 * np.sin(a), 0.3, 0.15, a), petal, "petal")
        cv.paint(cv.ellipse(0.42 * np.cos(a), -0.35 + 0.42 * np.sin(a), 0.3, 0.15, a)
                 & ~cv.ellipse(0.42 * np.cos(a), -0.35 + 0.42 * np.sin(a), 0.25, 0.1, a),
                 _darker(petal, 0.6), "petal")
    centre = _colour(rng, hue=rng.uniform(0.05, 0.15), val=(0.3, 0.9))
    cv.paint(cv.disk(0, -0.35, 0.2), _surface(rng, cv.S, centre, ("dots",), p=0.5), "centre")


def draw_tree(cv, rng):
    bark = _colour(rng, hue=0.07, sat=(0.4, 0.8), val=(0.2, 0.5))
    cv.paint(cv.rect(-0.13, 0.0, 0.13, 1.0), _surface(rng, cv.S, bark, ("wood",), p=0.7), "trunk")
    leaves = _colour(rng, hue=rng.choice([0.25, 0.33, 0.1]), sat=(0.4, 1.0), val=(0.3, 0.8))
    canopy = np.zeros_like(cv.u, dtype=bool)
    for _ in range(rng.integers(3, 6)):
        canopy |= cv.disk(rng.uniform(-0.45, 0.45), rng.uniform(-0.55, -0.15), rng.uniform(0.3, 0.45))
    cv.paint(canopy, _surface(rng, cv.S, leaves, ("grass", "dots", "water"), p=0.75), "canopy")


def draw_fish(cv, rng):
    skin = _colour(rng)
    cv.paint(cv.polygon([(0.45, 0), (1.0, -0.45), (0.9, 0), (1.0, 0.45)]), _darker(skin, 0.7), "tail")
    cv.paint(cv.ellipse(-0.1, 0, 0.68, 0.4), _surface(rng, cv.S, skin, ("dots", "water", "stripes"), p=0.7),
             "fish_body")
    draw_eye(cv, rng, -0.48, -0.1, rng.uniform(0.14, 0.17))


def draw_snowman(cv, rng):
    snow = np.array([0.93, 0.95, 0.98]) * rng.uniform(0.85, 1.0)
    outline = snow * 0.55
    for y, r in ((0.6, 0.4), (0.04, 0.3), (-0.56, 0.34)):
        cv.paint(cv.disk(0, y, r), outline, "snowball")
        cv.paint(cv.disk(0, y, r - 0.05), snow, "snowball")
    for side in (-1, 1):
        draw_eye(cv, rng, side * 0.16, -0.6, rng.uniform(0.13, 0.16))
    for y in (-0.06, 0.12):
        cv.paint(cv.disk(0, y, 0.05), np.array([0.1, 0.1, 0.1]), "snowball")


def draw_butterfly(cv, rng):
    wing = _colour(rng)
    spot = _colour(rng)
    texture = _surface(rng, cv.S, wing, ("dots", "stripes"), p=0.3)
    for side in (-1, 1):
        cv.paint(cv.ellipse(side * 0.45, -0.3, 0.5, 0.36, side * 0.5), _darker(wing, 0.4), "wing")
        cv.paint(cv.ellipse(side * 0.45, -0.3, 0.44, 0.3, side * 0.5), texture, "wing")
        cv.paint(cv.ellipse(side * 0.35, 0.35, 0.32, 0.24, -side * 0.6), texture, "wing")
        cv.paint(cv.disk(side * 0.5, -0.35, 0.13), spot, "spot")
        cv.paint(cv.bar(0, -0.5, side * 0.25, -0.95, 0.05), np.array([0.1, 0.1, 0.1]), "antenna")
    cv.paint(cv.ellipse(0, 0, 0.08, 0.55), np.array([0.12, 0.1, 0.08]), "antenna")


DRAW = dict(zip(CLASSES, (draw_face, draw_car, draw_bicycle, draw_house, draw_clock, draw_flower,
                          draw_tree, draw_fish, draw_snowman, draw_butterfly)))
# how far each class may turn (radians): upright things stay roughly upright
TILT = dict(face=0.35, car=0.25, bicycle=0.25, house=0.2, clock=np.pi, flower=0.3, tree=0.15,
            fish=0.5, snowman=0.2, butterfly=np.pi)

# Loose parts drawn as clutter (and as probes): name -> draw(cv, rng) at the frame's centre.
# PROBE_SCALE: px per frame unit when a part is drawn alone as a probe, chosen so that its size
# matches the sizes the part has in the world's objects (object radius R = 17..26 px): e.g. a
# car's wheel has radius 0.24-0.3 R and a bicycle's 0.36-0.42 R, so 4-11 px; the loose wheel has
# radius 0.9 units, hence 4.5-11 px per unit.
LOOSE = {
    "wheel": lambda cv, rng: draw_wheel(cv, rng, 0, 0, 0.9),
    "eye": lambda cv, rng: draw_eye(cv, rng, 0, 0, 0.9),
    "window": lambda cv, rng: draw_window(cv, rng, 0, 0, 0.9, 0.8),
    "petal": lambda cv, rng: cv.paint(cv.ellipse(0, 0, 0.9, 0.45), _colour(rng), "petal"),
    "spot": lambda cv, rng: cv.paint(cv.disk(0, 0, 0.8), _colour(rng), "spot"),
    "roof": lambda cv, rng: cv.paint(cv.polygon([(-0.9, 0.5), (0.9, 0.5), (0, -0.5)]), _colour(rng), "roof"),
    "hand": lambda cv, rng: cv.paint(cv.bar(-0.8, 0, 0.8, 0, 0.2), _colour(rng, val=(0, 0.3)), "hand"),
}
PROBE_SCALE = {"wheel": (4.5, 11), "eye": (2.5, 5.5), "window": (3.3, 5.7), "petal": (5.5, 8.5),
               "spot": (2.7, 4.2), "roof": (16, 26), "hand": (4, 9.5)}


# ------------------------------------------------------------------------------------------------
# Whole images


def _part_ids(parts):
    """Part map at 2x -> 1x: the id covering the most of each 2x2 block (top-left on ties)."""
    s = SUPERSAMPLE
    blocks = parts.reshape(parts.shape[0] // s, s, parts.shape[1] // s, s).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(blocks.shape[0], blocks.shape[1], s * s)
    counts = (blocks[..., :, None] == blocks[..., None, :]).sum(axis=-1)
    return np.take_along_axis(blocks, counts.argmax(axis=-1)[..., None], axis=-1)[..., 0]


def background(rng, S):
    """A plain colour with a gradient, or a low-contrast texture: (3, S, S) at 2x resolution."""
    base = _colour(rng, sat=(0.0, 0.7), val=(0.3, 1.0))
    if rng.random() < 0.6:
        name = TEXTURES[rng.integers(len(TEXTURES))]
        return _texture(name, rng, S, base, base * rng.uniform(0.6, 0.85))
    y, x = np.mgrid[0:S, 0:S] / S - 0.5
    g = rng.normal(size=2) * rng.uniform(0, 0.3)
    return base[:, None, None] + (g[0] * x + g[1] * y)[None]


def _finish(cv, rng):
    image = downsample(cv.image, SUPERSAMPLE) + rng.normal(0, rng.uniform(0.0, 0.03), size=(3, SIZE, SIZE))
    return np.clip(image, 0, 1).astype(np.float32), _part_ids(cv.parts).astype(np.uint8)


def render(label, rng, clutter=True, occlusion=True):
    """One image (3, 64, 64) in [0, 1] of class ``label`` and its part map (64, 64) uint8."""
    S = SIZE * SUPERSAMPLE
    cv = Canvas(background(rng, S))
    R = rng.uniform(0.26, 0.4) * SIZE
    cx, cy = rng.uniform(R, SIZE - R, size=2)
    n_clutter = rng.integers(1, 4) if clutter else 0
    for k in range(n_clutter):                            # loose parts, some behind the object
        name = list(LOOSE)[rng.integers(len(LOOSE))]
        r = R * rng.uniform(0.2, 0.35)
        cv.frame(*rng.uniform(r, SIZE - r, size=2), r, rng.uniform(0, 2 * np.pi))
        if k == 0 or rng.random() < 0.5:
            LOOSE[name](cv, rng)
            cv.parts[:] = 0                               # clutter is not the object
    cv.frame(cx, cy, R, rng.uniform(-1, 1) * TILT[CLASSES[label]], flip=rng.random() < 0.5)
    DRAW[CLASSES[label]](cv, rng)
    if occlusion and rng.random() < 0.3:                  # a patch hides part of the object
        w = rng.uniform(0.25, 0.5)
        x, y = rng.uniform(-0.8, 0.8, size=2)
        cover = cv.rect(x - w, y - w, x + w, y + w)
        cv.paint(cover, _surface(rng, S, _colour(rng), p=0.5))
    if clutter and rng.random() < 0.5:                    # a loose part in front, off the object
        r = R * rng.uniform(0.2, 0.3)
        cv.frame(*rng.uniform(r, SIZE - r, size=2), r, rng.uniform(0, 2 * np.pi))
        name = list(LOOSE)[rng.integers(len(LOOSE))]
        saved = cv.parts.copy()
        LOOSE[name](cv, rng)
        cv.parts = np.where(cv.parts != saved, 0, saved).astype(np.uint8)
    return _finish(cv, rng)


def make_dataset(n, seed=0, labels=None, clutter=True, occlusion=True):
    """``n`` images with balanced, shuffled labels: (images (n, 3, 64, 64) float32 in [0, 1],
    labels (n,) int64, part maps (n, 64, 64) uint8). Same seed, same data."""
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = rng.permutation(np.arange(n) % len(CLASSES))
    images = np.empty((n, 3, SIZE, SIZE), dtype=np.float32)
    parts = np.empty((n, SIZE, SIZE), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i], parts[i] = render(int(label), rng, clutter, occlusion)
    return images, np.asarray(labels, dtype=np.int64), parts


# ------------------------------------------------------------------------------------------------
# Probe stimuli: one part, or one texture, alone


def render_part(name, rng, size=SIZE, scale=None, grey=0.5):
    """Part ``name`` alone (one of LOOSE) at the centre of a plain grey image: (image, mask)."""
    if name not in LOOSE:
        raise ValueError(f"unknown probe part {name!r}; probe parts are: {', '.join(LOOSE)}")
    S = size * SUPERSAMPLE
    cv = Canvas(np.full((3, S, S), grey))
    r = rng.uniform(*PROBE_SCALE[name]) * size / SIZE if scale is None else scale   # px per unit
    cv.frame(size / 2, size / 2, r, rng.uniform(0, 2 * np.pi))
    LOOSE[name](cv, rng)
    image = np.clip(downsample(cv.image, SUPERSAMPLE), 0, 1).astype(np.float32)
    return image, _part_ids(cv.parts) > 0


def render_texture(name, rng, size=SIZE):
    """A patch of texture ``name`` filling a (3, size, size) image, in two random colours."""
    S = size * SUPERSAMPLE
    c1 = _colour(rng)
    image = _texture(name, rng, S, c1, c1 * rng.uniform(0.2, 0.5))
    return np.clip(downsample(image, SUPERSAMPLE), 0, 1).astype(np.float32)


def scramble(image, mask, rng):
    """``image`` with the pixels inside ``mask`` shuffled among themselves (same colours, no
    structure): the control that separates a part detector from a colour detector."""
    out = image.copy()
    idx = np.flatnonzero(mask)
    out.reshape(3, -1)[:, idx] = image.reshape(3, -1)[:, rng.permutation(idx)]
    return out


# ------------------------------------------------------------------------------------------------
# The jumbled control: an object's own parts at wrong places


def components(mask):
    """Labels 1..n of the 4-connected regions of a boolean (H, W) mask (0 outside it)."""
    h, w = mask.shape
    big = h * w
    label = np.where(mask, np.arange(big).reshape(h, w), big)   # each pixel: a pixel of its region
    while True:
        padded = np.pad(label, 1, constant_values=big)
        smallest = np.minimum.reduce([padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1],
                                      padded[1:-1, :-2], padded[1:-1, 2:]])
        new = np.where(mask, smallest, big).ravel()
        inside = new < big
        for _ in range(4):                    # follow the pointers: the labels spread fast
            new[inside] = new[new[inside]]
        new = new.reshape(h, w)
        if np.array_equal(new, label):
            break
        label = new
    _, dense = np.unique(np.where(mask, label, -1), return_inverse=True)
    return dense.reshape(h, w) if not mask.all() else dense.reshape(h, w) + 1


def render_jumbled(label, rng):
    """One object of class ``label`` twice on the same plain background (no clutter, no
    occlusion): assembled, and **jumbled**, with each of its parts (every connected region of
    one part id) moved whole to a random place, largest first. Returns (assembled, jumbled),
    both (3, 64, 64) float32: the same pixels, only their arrangement differs. An object unit
    must answer the first clearly more than the second; a unit that adds parts up cannot tell
    them apart."""
    seed = int(rng.integers(2 ** 63))
    picture, parts = render(label, np.random.default_rng(seed), clutter=False, occlusion=False)
    back = np.clip(downsample(background(np.random.default_rng(seed), SIZE * SUPERSAMPLE), SUPERSAMPLE), 0, 1)
    pieces = []
    for pid in np.unique(parts[parts > 0]):
        regions = components(parts == pid)
        pieces += [_filled(regions == k, picture) for k in range(1, regions.max() + 1)]
    pieces.sort(key=lambda piece: -piece[0].sum())
    assembled, jumbled = back.copy(), back.copy()
    for whole, colours in pieces:
        rows, cols = np.nonzero(whole)
        assembled[:, rows, cols] = colours[:, rows, cols]
        dy = rng.integers(-rows.min(), SIZE - rows.max())     # anywhere the whole piece fits
        dx = rng.integers(-cols.min(), SIZE - cols.max())
        jumbled[:, rows + dy, cols + dx] = colours[:, rows, cols]
    return assembled.astype(np.float32), jumbled.astype(np.float32)


def _filled(piece, picture):
    """A piece with its holes (where the parts drawn on it were: a head's eyes and mouth) and
    the picture's colours with those holes painted from the piece's own pixels around them, so
    that a moved part leaves no outline of itself behind. Returns (mask, colours)."""
    outside = components(~piece)
    border = np.unique(np.r_[outside[0], outside[-1], outside[:, 0], outside[:, -1]])
    holes = ~piece & ~np.isin(outside, border)
    colours, known = picture.copy(), piece.copy()
    while (holes & ~known).any():             # grow the known colours into the holes, a ring at a time
        k = np.pad(known, 1).astype(np.float32)
        c = np.pad(colours * known, ((0, 0), (1, 1), (1, 1)))
        count = k[:-2, 1:-1] + k[2:, 1:-1] + k[1:-1, :-2] + k[1:-1, 2:]
        total = c[:, :-2, 1:-1] + c[:, 2:, 1:-1] + c[:, 1:-1, :-2] + c[:, 1:-1, 2:]
        ring = holes & ~known & (count > 0)
        colours[:, ring] = (total / np.maximum(count, 1))[:, ring]
        known |= ring
    return piece | holes, colours


def make_jumbled(n_per_class, seed=0):
    """``render_jumbled`` for every class, ``n_per_class`` times: (assembled (N, 3, 64, 64),
    jumbled (N, 3, 64, 64), labels (N,)). Same seed, same images."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    pairs = [render_jumbled(int(c), rng) for c in labels]
    return np.stack([a for a, _ in pairs]), np.stack([j for _, j in pairs]), labels
