"""The hierarchy probe: the labelling rule on made-up responses and on hand-built units."""
import os

import numpy as np
import pytest

from minicnn import hierarchy as H
from minicnn import world
from minicnn.network import Layer, Network
from minicnn.preprocess import SHAPES

SIZE = 64


@pytest.fixture(scope="module")
def probes():
    return H.make_probes(SIZE, seed=0)


def test_probe_families_are_complete_and_paired(probes):
    images, info, extent = probes
    family = [f for f, _ in info]
    assert images.shape == (len(info), 3, SIZE, SIZE) and 0 <= images.min() and images.max() <= 1
    for f, kinds in (("T", world.TEXTURES), ("P", tuple(world.LOOSE))):
        names = [n for g, n in info if g == f]
        assert sorted(set(names)) == sorted(kinds)
        assert names == [n for g, n in info if g == f + "*"]            # one control per image
    # a scrambled image holds the same colours as the image before it
    k = family.index("P*")
    assert np.allclose(np.sort(images[k - 1].ravel()), np.sort(images[k].ravel()))
    assert {"E", "G", "V"} <= set(family) and family.count("G") == H.ORIENTATIONS * len(H.GRATING_PERIODS)
    parts = [e for (f, _), e in zip(info, extent) if f == "P"]
    assert min(parts) >= 4 and max(parts) <= 50 and not any(e for (f, _), e in zip(info, extent) if f[0] != "P")


def test_selectivity_index_by_hand():
    peak = np.array([[4.0, 1.0], [4.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    si, pref, mu_max = H.selectivity(peak, labels, 3)
    # channel 0: class means 4, 1, 0 -> (4 - 0.5) / (4 + 0.5); channel 1: all equal -> 0
    assert si[0] == pytest.approx(3.5 / 4.5) and pref[0] == 0 and mu_max[0] == 4
    assert si[1] == pytest.approx(0.0)


NULL = {"orientation": 0.2, "hue": 0.2}     # made-up thresholds for the edge/colour test


def _made_up(info):
    """Probe responses (probes, 7 channels) and data responses for channels built to pass
    exactly one test each: part, texture, edge, object, dead, colour-only part, curve; and
    the object test's control (assembled and jumbled answers, their classes)."""
    family = np.array([f for f, _ in info])
    name = np.array([n for _, n in info])
    P = np.zeros((len(info), 7))
    base = {"E": 2.0, "G": 1.0, "V": 1.0, "T": 2.0, "T*": 1.0, "P": 1.0, "P*": 1.0}
    for f, v in base.items():
        P[family == f, 0] = v
    P[(family == "P") & (name == "wheel"), 0] = 5.0                  # 0: a wheel part unit
    for f, v in base.items():
        P[family == f, 1] = v
    P[(family == "T") & (name == "brick"), 1] = 5.0                  # 1: a brick texture unit
    P[:, 2] = np.select([family == "E", family == "V", family == "T", family == "P"], [3.0, 2.5, 2.9, 2.8], 2.0)
    P[family == "G", 2] = 0.5
    P[np.flatnonzero(family == "G")[:3], 2] = 3.0                     # 2: tuned to the first orientation
    P[:, 3] = 2.0                                                     # 3: object unit (data below)
    P[:, 4] = 0.0                                                     # 4: dead
    P[:, 5] = np.where(family == "P", 5.0, np.where(family == "P*", 4.9, 1.0))   # colours, not shape
    P[np.flatnonzero(name == "hue")[:2], 5] = 3.0                     # ... tuned to red and orange
    P[:, 6] = np.where(family == "V", 3.0, 1.0)                       # 6: a curve detector
    labels = np.repeat(np.arange(10), 4)
    D = np.ones((40, 7))
    D[:, 3] = np.where(labels == 0, 10.0, 1.0)
    D[:, 4] = 0.0
    assembled, jumbled = np.ones((20, 7)), np.ones((20, 7))
    assembled[:, 3] = 9.0
    jumbled[:, 3] = 6.0                                               # 9 >= 1.25 * 6: the arrangement matters
    return P, D, labels, (assembled, jumbled, np.repeat(np.arange(10), 2))


def test_vector_strength_by_hand():
    assert H.vector_strength(np.array([[1.0], [1.0], [1.0], [1.0]]))[0] == pytest.approx(0)
    assert H.vector_strength(np.array([[2.0], [0.0], [0.0], [0.0]]))[0] == pytest.approx(1)
    # answers 1 and 1 at 0 and 90 degrees: resultant sqrt(2) over a total of 2
    assert H.vector_strength(np.array([[1.0], [1.0], [0.0], [0.0]]))[0] == pytest.approx(np.sqrt(0.5))
    assert H.vector_strength(np.zeros((4, 1)))[0] == 0


def test_rule_gives_each_made_up_unit_its_label(probes):
    _, info, extent = probes
    P, D, labels, jumbled = _made_up(info)
    curve = np.array([False] * 6 + [True])

    def label(P=P, D=D, rf_size=64, null=NULL, jumbled=jumbled):
        return H.label_units(P, info, extent, D, labels, 10, curve, rf_size, null, jumbled)
    units = label()
    assert [u["label"] for u in units] == ["part", "texture", "edge/colour", "object", "dead",
                                           "edge/colour", "curve"]
    assert units[0]["best_part"] == "wheel" and units[1]["best_texture"] == "brick"
    assert units[3]["selectivity"] == pytest.approx(9 / 11) and units[3]["preferred_class"] == 0
    assert units[3]["object_candidate"] and units[3]["assembled"] == 9 and units[3]["jumbled"] == 6
    # each threshold matters: a weaker structure margin or selectivity flips the label
    assert label(rf_size=7)[0]["label"] != "part"                                      # too small
    # the edge/colour test is positive: below the null's tuning it is no label at all
    strict = label(null={"orientation": 0.99, "hue": 0.99})
    assert strict[2]["label"] == strict[5]["label"] == "unlabelled"
    assert label(null={"orientation": 0.99, "hue": 0.2})[5]["label"] == "edge/colour"   # hue alone
    assert label(null={"orientation": 0.2, "hue": 0.99})[2]["label"] == "edge/colour"   # orientation alone
    # the jumbled control: a unit that answers the parts as well jumbled is no object unit
    assembled, moved, classes = jumbled
    moved = moved.copy()
    moved[:, 3] = 8.0                                                      # 9 < 1.25 * 8
    assert label(jumbled=(assembled, moved, classes))[3]["label"] != "object"
    assert label(jumbled=None)[3]["label"] != "object"                     # no control, no object
    P = P.copy()
    P[(np.array([f for f, _ in info]) == "P*"), 0] = 4.5                    # 5 < 1.25 * 4.5
    D = D.copy()
    D[:, 3] = np.where(labels == 0, 2.5, 1.0)                             # SI 0.43, mean 2.5 > 2
    units = label(P=P, D=D)
    assert units[0]["label"] != "part" and units[3]["label"] != "object"
    D[:, 3] = np.where(labels == 0, 10.0, 1.0)
    P[:, 3] = np.where(np.array([f for f, _ in info]) == "P", 11.0, 2.0)   # a part drives it more
    assert label(P=P, D=D)[3]["label"] != "object"


def test_jumbled_objects_hold_the_same_pixels_moved():
    """The control's two images: one background, the object's parts (holes filled) pasted in
    place or moved; in place it is the object as rendered, moved it is not."""
    assembled, moved, labels = world.make_jumbled(2, seed=3)
    assert list(labels) == [c for c in range(len(world.CLASSES)) for _ in range(2)]
    for k in range(len(labels)):
        seed_free = np.abs(assembled[k] - moved[k]).max(axis=0) > 0.05
        assert 0.01 < seed_free.mean() < 0.6, (k, seed_free.mean())      # parts moved, not all
    # the assembled object is the rendered one (no clutter, no occlusion), up to the render's
    # noise (sd up to 0.03) and its anti-aliased rims; the jumbled one differs at parts' places
    for c in range(len(world.CLASSES)):
        seed = int(np.random.default_rng(c).integers(2 ** 63))
        a, j = world.render_jumbled(c, np.random.default_rng(c))
        clean, _ = world.render(c, np.random.default_rng(seed), clutter=False, occlusion=False)
        same, moved = (np.abs(x - clean).max(axis=0) for x in (a, j))
        assert np.quantile(same, 0.9) < 0.06 and (moved > 0.1).mean() > 0.15, c


def test_components_by_hand():
    m = np.zeros((6, 6), bool)
    m[0, :3] = m[1, 2] = True                  # an L
    m[3:, 4] = True                            # a bar
    m[5, 0] = True                             # a dot; (1, 2) and (3, 4) do not touch
    c = world.components(m)
    assert c.max() == 3 and (c[m] > 0).all() and (c[~m] == 0).all()
    assert len({c[0, 0], c[1, 2]}) == 1 and len({c[0, 0], c[3, 4], c[5, 0]}) == 3


def _template_net(template, rng):
    """One KxK conv layer with two channels: a matched filter for ``template`` (K x K, zero
    mean, thresholded at half its answer to the template itself) and a random filter."""
    x = (template - 0.5) / 0.25                                  # the model's input (SHAPES)
    w0 = x - x.mean()
    b0 = -0.5 * float((w0 * x).sum())
    w1 = rng.standard_normal(w0.shape) * np.sqrt(2 / w0.size)
    w = np.stack([w0, w1]).astype(np.float32)
    K = template.shape[-1]
    layers = [Layer("conv1_1", "conv", w=w, b=np.array([b0, 0.0], np.float32), pad=K // 2), Layer("relu1_1", "relu")]
    net = Network(layers, input_shape=(3, SIZE, SIZE), class_names=list(world.CLASSES),
                  meta={"preprocessing": SHAPES})
    return net


@pytest.mark.parametrize("part", ["eye", "wheel"])
def test_a_unit_wired_to_a_part_is_labelled_part_and_a_random_unit_is_not(probes, part):
    rng = np.random.default_rng(5)
    scale = float(np.mean(world.PROBE_SCALE[part]))             # a part of typical size
    image, _ = world.render_part(part, np.random.default_rng(3), SIZE, scale=scale)
    half = int(np.ceil(0.9 * scale)) + 1                         # the part's radius, and a margin
    net = _template_net(image[:, 32 - half:32 + half + 1, 32 - half:32 + half + 1], rng)
    images, info, extent = probes
    probe_peak, _ = H.peaks(net, images)
    data, labels, _ = world.make_dataset(60, seed=9)
    data_peak, _ = H.peaks(net, data)
    units = H.label_units(probe_peak["relu1_1"], info, extent, data_peak["relu1_1"], labels, 10,
                          np.zeros(2, bool), net.receptive_field("relu1_1")[0], NULL)
    assert units[0]["label"] == "part" and units[0]["best_part"] == part, units[0]
    assert units[1]["label"] != "part", units[1]


# ------------------------------------------------------------------------------------------------
# The shipped world model (its weights are in weights/; nothing is trained here)


@pytest.fixture(scope="module")
def shipped():
    from minicnn.weights import load_model
    net = load_model("world")
    images, labels, parts = world.make_dataset(400, seed=H.HELD_OUT_SEED + 1)
    jumbled = world.make_jumbled(20, seed=H.HELD_OUT_SEED + 8)
    trained, random = H.analyze(net, images, labels, parts, seed=1, curve_probe=False, jumbled=jumbled)
    return net, trained, random


def _block_shares(result, label):
    """{block: share of the block's channels with this label}."""
    out = {}
    for firing, units in result["layers"].items():
        block = firing[len("relu"):].split("_")[0]
        out.setdefault(block, []).extend(u["label"] == label for u in units)
    return {b: float(np.mean(v)) for b, v in out.items()}


def test_shipped_model_shows_the_hierarchy_and_its_random_copy_does_not(shipped):
    """The lesson's claims, per block (all channels of a block's conv layers), each label a
    positive test: of the labelled units, edge/colour units are the largest group in block 1
    and object units the largest in the last block; the share of part units peaks in a middle
    block. The random copy has no object units, part units stay under half the trained peak
    share in every block, and its edge/colour share stays near the null's own rate (the
    thresholds are the 97.5th percentiles of other random copies, for two tests) -- under a
    tenth everywhere, and under the trained share in block 1. The jumbled control removes some
    object candidates, but keeps most of them."""
    _, trained, random = shipped
    shares = {label: _block_shares(trained, label) for label in H.LABELS}
    blocks = sorted(shares["part"])
    first, last = blocks[0], blocks[-1]
    named = [label for label in H.LABELS if label not in ("unlabelled", "dead")]
    assert max(named, key=lambda label: shares[label][first]) == "edge/colour", shares
    assert max(H.LABELS, key=lambda label: shares[label][last]) == "object", shares
    part_peak = max(blocks, key=lambda b: shares["part"][b])
    assert part_peak not in (first, last) and shares["part"][part_peak] >= 0.2, shares
    null = {label: _block_shares(random, label) for label in H.LABELS}
    assert all(v == 0 for v in null["object"].values()), null
    assert max(null["part"].values()) < 0.5 * shares["part"][part_peak], null
    assert max(null["edge/colour"].values()) < 0.1 and null["edge/colour"][first] < shares["edge/colour"][first], null
    units = [u for layer in trained["layers"].values() for u in layer]
    candidates = sum(u["object_candidate"] for u in units)
    objects = sum(u["label"] == "object" for u in units)
    assert 0.5 * candidates < objects < candidates, (objects, candidates)


def test_shipped_model_has_a_named_detector_for_every_shared_part(shipped):
    _, trained, random = shipped
    for part in world.SHARED_PARTS:
        found = trained["named_parts"][part]
        assert found["named"], (part, found)
        assert len(found["classes"]) >= 2
        assert all(share >= H.LOCALIZED for share in found["per_class"].values())
    assert not all(random["named_parts"][part]["named"] for part in world.SHARED_PARTS)


def test_shipped_model_has_curve_detectors_above_the_null_in_a_middle_block():
    from minicnn import curves
    from minicnn.weights import load_model
    net = load_model("world")
    ranked, probe = curves.analyze(net, "conv3_1", null_copies=1)
    assert sum(s["curve_detector"] for s in ranked) >= 1, probe["null_99"]


# ------------------------------------------------------------------------------------------------
# Command line


def _run(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "minicnn.hierarchy", *args], capture_output=True, text=True)


def test_cli_prints_every_layer_and_refuses_bad_input(tmp_path):
    import json

    from fixtures import assert_one_line_error
    done = _run("--images", "20", "--null-copies", "0", "--no-figure", "--json", "--outdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [e["layer"] for e in result["layers"]] == ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1",
                                                      "relu3_2", "relu4_1", "relu4_2"]
    for e in result["layers"]:
        assert sum(e["trained"].values()) == pytest.approx(1) and len(e["units"]) == e["channels"]
    assert set(result["named_parts"]) == set(world.SHARED_PARTS) and os.listdir(tmp_path) == []
    assert_one_line_error(_run("--images", "5"), "--images")
    assert_one_line_error(_run("--model", "vgg19", "--weights", str(tmp_path / "none.h5")), "none.h5")
    (tmp_path / "file").write_text("in the way")
    assert_one_line_error(_run("--outdir", str(tmp_path / "file" / "sub")), "cannot create")
    if os.path.isdir("/proc"):              # takes no files although os.access says it does
        assert_one_line_error(_run("--outdir", "/proc"), "not writable")
