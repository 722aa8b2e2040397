"""Curve detectors: the stimuli, the score on hand-built units whose answer is known, the
random-weight control, the shipped shapes model, and the command line."""
import json
import os

import numpy as np
import pytest

from minicnn import curves
from minicnn.curves import stimuli
from minicnn.network import Layer, Network
from minicnn.preprocess import SHAPES, preprocess
from minicnn.vgg19 import vgg19
from minicnn.weights import load_model

from fixtures import assert_one_line_error, run

K = 15                      # the hand-built units' kernel = their receptive field
SIZE = 32
THICKNESS = max(1.0, K / 14)   # the same stroke width make_stimuli uses for this field
RADIUS = curves.RADII[2] * K   # one of the probed radii


def angle_gap(a, b):
    return abs((a - b + 180) % 360 - 180)


# -- stimuli ------------------------------------------------------------------------------------

def _ink(image):
    """Where the stroke is (1 on the stroke, 0 on the background), from a dark-on-light image."""
    return (stimuli.BACKGROUND - image[0]) / (stimuli.BACKGROUND - stimuli.STROKE)


@pytest.mark.parametrize("angle", [0, 70, 90, 200, 315])
def test_arc_passes_through_centre_and_bulges_towards_its_angle(angle):
    centre = (20.0, 24.0)
    ink = _ink(stimuli.arc(48, centre, 9.0, angle, 1.5, 14.0))
    assert ink[20, 24] > 0.9                                   # the apex is on the centre pixel
    rows, cols = np.mgrid[:48, :48]
    mean_r, mean_c = (ink * rows).sum() / ink.sum(), (ink * cols).sum() / ink.sum()
    # the arc curls back from its apex, away from the direction it bulges towards
    away = np.array([mean_c - centre[1], mean_r - centre[0]])
    a = np.deg2rad(angle)
    assert away @ np.array([np.cos(a), np.sin(a)]) < -0.5
    assert abs(away @ np.array([-np.sin(a), np.cos(a)])) < 0.3   # symmetric about its axis


@pytest.mark.parametrize("angle", [0, 40, 90, 130])
def test_line_is_the_tangent_and_edge_faces_its_angle(angle):
    centre = (23.5, 23.5)
    ink = _ink(stimuli.line(48, centre, angle, 1.5, 30.0))
    rows, cols = np.nonzero(ink > 0.5)
    d = np.stack([cols - centre[1], rows - centre[0]])
    a = np.deg2rad(angle)
    assert np.abs(np.array([np.cos(a), np.sin(a)]) @ d).max() <= 1.5   # no extent along the normal
    assert np.abs(np.array([-np.sin(a), np.cos(a)]) @ d).max() >= 13     # all of it along the tangent
    edge = _ink(stimuli.edge(48, centre, angle))
    probe = np.round(np.array(centre) + 10 * np.array([np.sin(a), np.cos(a)])).astype(int)
    assert edge[probe[0], probe[1]] < 0.01            # light on the side the angle points to
    assert edge[2 * 24 - probe[0] - 1, 2 * 24 - probe[1] - 1] > 0.99


def test_polarity_swaps_colours():
    dark = stimuli.arc(32, (15.5, 15.5), 6, 45, 1.5, 10)
    light = stimuli.arc(32, (15.5, 15.5), 6, 45, 1.5, 10, *stimuli.LIGHT_ON_DARK)
    np.testing.assert_allclose(dark + light, stimuli.BACKGROUND + stimuli.STROKE, atol=1e-6)


# -- hand-built units ---------------------------------------------------------------------------

def _detector(image):
    """A unit built from a template: weights = the preprocessed image minus its mean, and a bias
    that sets its threshold at half its response to the template itself (a unit that fires
    only for a good match, as a trained unit's negative bias makes it)."""
    x = preprocess(image[None], SHAPES)[0]
    w = x - x.mean()
    w /= np.linalg.norm(w)
    return w, -0.5 * float((w * x).sum())


def hand_built_network(angle, polarity, n_random=13, seed=0):
    """Channel 0: a detector of an arc bulging towards ``angle``; channel 1: a detector of the
    straight line through the centre; channel 2: a step-edge detector; then random channels."""
    fg, bg = curves.POLARITIES[polarity]
    c = ((K - 1) / 2, (K - 1) / 2)
    units = [_detector(stimuli.arc(K, c, RADIUS, angle, THICKNESS, 0.6 * K, fg, bg)),
             _detector(stimuli.line(K, c, angle + 90, THICKNESS, 0.6 * K, fg, bg)),
             _detector(stimuli.edge(K, c, angle + 45, fg, bg))]
    rng = np.random.default_rng(seed)
    units += [(rng.standard_normal((3, K, K)) * np.sqrt(2 / (3 * K * K)), 0.0) for _ in range(n_random)]
    w = np.stack([u[0] for u in units]).astype(np.float32)
    b = np.array([u[1] for u in units], dtype=np.float32)
    return Network([Layer("conv", "conv", w=w, b=b, pad=K // 2), Layer("relu", "relu")],
                   input_shape=(3, SIZE, SIZE), meta={"preprocessing": SHAPES})


@pytest.mark.parametrize("angle, polarity", [(130, "dark"), (270, "light"), (20, "dark")])
def test_hand_built_curve_detector_is_found_first_with_its_orientation(angle, polarity):
    ranked, probe = curves.analyze(hand_built_network(angle, polarity), "conv", null_copies=2)
    assert probe["layer"] == "relu"                   # the unit's firing, after the ReLU
    first = ranked[0]
    assert first["channel"] == 0 and first["label"] == "curve" and first["curve_detector"]
    assert angle_gap(first["preferred_orientation"], angle) <= 10
    assert first["polarity"] == polarity
    assert first["preferred_radius"] == pytest.approx(RADIUS)
    assert first["score"] >= curves.CURVE_THRESHOLD and ranked[1]["score"] < first["score"] / 3
    by_channel = {s["channel"]: s for s in ranked}
    assert by_channel[1]["label"] == "line" and by_channel[1]["score"] < curves.CURVE_THRESHOLD
    assert by_channel[2]["label"] == "edge" and by_channel[2]["score"] < curves.CURVE_THRESHOLD
    assert not any(s["curve_detector"] for s in ranked[1:])


def test_each_term_of_the_score_on_made_up_responses():
    """Response tables built by hand, one unit per column, each failing one term of the score
    as the module docstring defines it (the values follow from the definitions, not the code)."""
    info, radii, angles = [], [2.0, 4.0], np.arange(8) * 45.0
    for polarity in curves.POLARITIES:
        info += [("curve", polarity, r, a) for r in radii for a in angles]
        info += [(k, polarity, np.inf, a) for k in ("line", "edge") for a in angles]
        info += [("blank", polarity, None, None)]
    info += [("noise", None, None, None)] * 2
    index = {d: i for i, d in enumerate(info) if d[0] != "noise"}
    resp = np.zeros((len(info), 6))
    peak = np.zeros_like(resp)
    ideal = index[("curve", "dark", 4.0, 90.0)]
    resp[ideal, :] = 1.0                                     # every unit: best arc = 1 at (4, 90)
    resp[index[("line", "dark", np.inf, 0.0)], 1] = 2.0      # 1: a straight line beats it
    resp[index[("curve", "dark", 4.0, 270.0)], 2] = 1.0      # 2: the opposite arc ties it
    peak[-1, 3] = 1.0                                        # 3: noise drives the map as much
    for a in angles:                                         # 4: flat tuning (every orientation)
        resp[index[("curve", "dark", 4.0, a)], 4] = 1.0
    for a in angles:                                         # 5: every arc 0.5, its best 1.5 (all
        resp[index[("curve", "dark", 4.0, a)], 5] = 0.5 if a != 90 else 1.5  # arcs cross the centre)
    scores = curves.score_channels(resp, peak, info, radii, angles)
    expected = {0: (1, 1, 1, 1), 1: (0, 1, 1, 1), 2: (1, 1, 0, 0), 3: (1, 0, 1, 1), 4: (1, 1, 0, 0),
                5: (1, 1, round(1 / 1.5, 6), 1)}
    for unit, (k, z, d, t) in expected.items():
        s = scores[unit]
        got = tuple(round(s[key], 6) for key in ("curvature", "control", "direction", "tuning"))
        assert got == (k, z, d, t), (unit, got)
        assert s["score"] == pytest.approx(k * z * d * t)
        if unit != 4:                                        # (4 has no single preferred orientation)
            assert (s["preferred_orientation"], s["preferred_radius"], s["polarity"]) == (90.0, 4.0, "dark")


def test_a_line_detector_answers_both_sides_of_its_line_alike():
    """Why the direction term exists: arcs bulging to either side of a line share its centre."""
    ranked, _ = curves.analyze(hand_built_network(130, "dark"), "conv", null_copies=0)
    line = next(s for s in ranked if s["channel"] == 1)
    assert line["direction"] < 0.2 and line["best_straight"] > line["best_curve"]


# -- random weights: the built-in control -------------------------------------------------------

def test_random_vgg19_has_almost_no_curve_detectors():
    net = vgg19(seed=3, notop=True)
    net.meta["preprocessing"] = net.meta.get("preprocessing") or SHAPES
    ranked, probe = curves.analyze(net, "conv3_3", null_copies=1)
    scores = np.array([s["score"] for s in ranked])
    assert len(ranked) == 256 and probe["rf_size"] == 40
    assert np.median(scores) < 0.05
    assert (scores >= curves.CURVE_THRESHOLD).mean() <= 0.02
    assert sum(s["curve_detector"] for s in ranked) <= 2


def test_shapes_model_relu3_1_has_curve_detectors_and_its_random_copy_does_not():
    net = load_model("shapes")
    ranked, probe = curves.analyze(net, "conv3_1", null_copies=4)
    trained = [s for s in ranked if s["curve_detector"]]
    control, _ = curves.analyze(curves.random_copy(net, 99), "conv3_1", null_copies=4)
    random = [s for s in control if s["curve_detector"]]
    assert len(trained) >= 8 and len(random) <= 2, (len(trained), len(random))
    # a curve detector's tuning: one peak, at its preferred orientation, for the best radius
    for s in trained:
        curve = curves.tuning_curves(probe, s["channel"], s["polarity"])
        r = list(probe["radii"]).index(s["preferred_radius"])
        assert probe["angles"][curve[r].argmax()] == s["preferred_orientation"]


# -- command line -------------------------------------------------------------------------------

def test_cli_json_and_figure(tmp_path):
    done = run("minicnn.curves", "conv3_1", "--outdir", str(tmp_path), "--json", "--vis-steps", "8",
               "--null-copies", "1", "--top", "2")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["layer"] == "relu3_1" and len(result["channels"]) == 64
    scores = [c["score"] for c in result["channels"]]
    assert scores == sorted(scores, reverse=True)
    assert os.path.getsize(result["figure"]) > 10_000
    assert os.listdir(tmp_path) == ["relu3_1_curves.png"]


@pytest.mark.parametrize("args, fragment", [
    (["conv9_9"], "unknown layer"),
    (["fc5"], "not a convolutional layer"),              # the world model's first linear layer
    (["conv3_1", "--orientations", "7"], "--orientations"),
    (["conv3_1", "--weights", "/nonexistent.h5"], "nonexistent.h5"),
])
def test_cli_refuses_bad_input(tmp_path, args, fragment):
    assert_one_line_error(run("minicnn.curves", *args, "--outdir", str(tmp_path)), fragment)
    assert os.listdir(tmp_path) == []


def test_cli_refuses_missing_outdir(tmp_path):
    (tmp_path / "file").write_text("in the way")
    assert_one_line_error(run("minicnn.curves", "conv3_1", "--outdir", str(tmp_path / "file" / "sub")), "cannot create")


def test_dataset_examples_are_the_receptive_fields_where_the_channel_peaks():
    """top_patches: a channel that answers one bright pixel (3x3 conv, then 2x2 pool, then 3x3
    conv: a 8-px receptive field) finds the three images with the brightest dots first, and
    crops each around its dot."""
    rng = np.random.default_rng(0)
    w1 = np.zeros((1, 3, 3, 3), np.float32)
    w1[0, :, 1, 1] = 1.0                                           # the pixel itself
    w2 = np.zeros((1, 1, 3, 3), np.float32)
    w2[0, 0, 1, 1] = 1.0
    net = Network([Layer("conv1_1", "conv", w=w1, b=np.zeros(1, np.float32), pad=1), Layer("relu1_1", "relu"),
                   Layer("pool1", "pool", kernel=2, stride=2),
                   Layer("conv2_1", "conv", w=w2, b=np.zeros(1, np.float32), pad=1), Layer("relu2_1", "relu")],
                  input_shape=(3, 32, 32), class_names=[], meta={"preprocessing": {
                      "channel_order": "RGB", "scale": 1.0, "mean": [0.0] * 3, "std": [1.0] * 3}})
    images = rng.uniform(0, 0.1, (6, 3, 32, 32)).astype(np.float32)
    spots = {1: (5, 20, 3.0), 4: (18, 9, 2.0), 2: (26, 26, 1.0)}   # image: (y, x, brightness)
    for n, (y, x, v) in spots.items():
        images[n, :, y, x] = v
    size, stride, offset = net.receptive_field("relu2_1")
    crops, = curves.top_patches(net, "relu2_1", [0], images)
    assert len(crops) == 3 and size == 8
    for crop, n in zip(crops, (1, 4, 2)):                          # brightest first
        y, x, v = spots[n]
        assert crop.max() == v and 0 < crop.shape[1] <= size and 0 < crop.shape[2] <= size
