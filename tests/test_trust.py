"""Which saliency method to believe: occlusion, deletion/insertion, baselines, the sanity check
over many images, and signed maps (the planted-cue experiment is in test_shortcut.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fixtures import EXAMPLES, golden_network
from minicnn import saliency as S
from minicnn.network import Layer, Network
from minicnn.gradcheck import rel_error
from minicnn.preprocess import SHAPES
from minicnn.saliency import faithfulness as F
from minicnn.saliency import sanity
from minicnn.vgg19 import make_vgg

DATA = os.path.join(os.path.dirname(__file__), "data")
PLAIN = {"channel_order": "RGB", "scale": 1.0, "mean": [0.0] * 3, "std": [1.0] * 3}


def small_net(seed=0):
    net = make_vgg(((4,), (6,)), (8,), 3, (3, 12, 12), seed=seed, dtype=np.float64)
    net.meta["preprocessing"] = PLAIN
    return net


def test_occlusion_equals_a_brute_force_loop():
    net = small_net()
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 12, 12))
    r = S.occlusion(net, x, [1, 2], patch=4, stride=3, batch=5)
    for n, t in enumerate([1, 2]):
        base = net.forward(x[n:n + 1])[0, t]
        total, count = np.zeros((12, 12)), np.zeros((12, 12))
        for i in range(0, 9, 3):
            for j in range(0, 9, 3):
                y = x[n:n + 1].copy()
                y[:, :, i:i + 4, j:j + 4] = 0.5
                total[i:i + 4, j:j + 4] += base - net.forward(y)[0, t]
                count[i:i + 4, j:j + 4] += 1
        expected = total / np.maximum(count, 1)
        assert np.allclose(r.signed[n], expected, atol=1e-12)
        assert np.allclose(r.saliency[n], np.maximum(expected, 0))


def linear_net(w):
    """logit_k = sum w[k] * pixels: deleting pixel p (setting it to 0) lowers logit_k by w[k] x_p."""
    net = Network([Layer("flatten", "flatten"), Layer("fc", "linear", w=w, b=np.zeros(len(w)))],
                  input_shape=(3, 8, 8))
    net.meta["preprocessing"] = PLAIN
    return net


def test_an_oracle_map_beats_a_random_order():
    """On a linear model the exact contribution of each pixel is known: w x (summed over the
    colours). Ordered by it, deletion drops the probability faster and insertion raises it
    faster than random orders do."""
    rng = np.random.default_rng(1)
    w = np.zeros((2, 3 * 8 * 8))
    w[0] = rng.standard_normal(3 * 8 * 8) * 2
    net = linear_net(w)
    x = rng.uniform(0, 1, (3, 8, 8))
    oracle = (w[0].reshape(3, 8, 8) * x).sum(axis=0)
    good = F.scores(net, x, 0, oracle, steps=16)
    randoms = [F.scores(net, x, 0, rng.random((8, 8)), steps=16, seed=s) for s in range(5)]
    assert good["deletion"] < min(r["deletion"] for r in randoms)
    assert good["insertion"] > max(r["insertion"] for r in randoms)
    worst = F.scores(net, x, 0, -oracle, steps=16)       # the reversed order is the worst
    assert worst["deletion"] > good["deletion"] and worst["insertion"] < good["insertion"]


def test_auc_and_orders():
    assert F.auc([1, 1, 1]) == 1.0 and F.auc([1, 0]) == 0.5 and F.auc([0, 0.5, 1]) == 0.5
    order = F.order_of(np.array([[0.1, 0.9], [0.5, 0.5]]), np.random.default_rng(0))
    assert order[0] == 1 and set(order[1:3]) == {2, 3} and order[3] == 0


def test_evaluate_and_summary_rank_methods():
    net = small_net()
    x = np.random.default_rng(2).uniform(0, 1, (2, 3, 12, 12)).astype(np.float64)
    results = F.evaluate(net, x, [0, 1], ["vanilla", "occlusion"], {"patch": 4}, steps=8)
    assert set(results) == {"vanilla", "occlusion", "random"}
    assert all(len(v["deletion"]) == 2 == len(v["insertion"]) for v in results.values())
    table = F.summary(results)
    gaps = {m: table["methods"][m]["insertion_minus_deletion"]["mean"] for m in results}
    assert table["ranking"] == sorted(gaps, key=lambda m: -gaps[m])


def test_paired_differences_resolve_what_the_spread_over_images_hides():
    """Two methods whose scores swing together over images (b always 0.02 below a): the sd
    over images (about 0.3) dwarfs the gap, but paired, every image says a > b, so the
    difference is resolved; a third method equal to a on average but not image by image is not."""
    rng = np.random.default_rng(0)
    hard = rng.uniform(0.1, 0.9, 40)
    swing = rng.choice([-0.05, 0.05], 40)
    results = {"a": {"insertion": hard + 0.1, "deletion": np.full(40, 0.1)},
               "b": {"insertion": hard + 0.08, "deletion": np.full(40, 0.1)},
               "c": {"insertion": hard + 0.1 + swing - swing.mean(), "deletion": np.full(40, 0.1)}}
    table = F.summary(results)
    pairs = {(p["better"], p["worse"]): p for p in table["paired"]}
    ab = pairs[("a", "b")] if ("a", "b") in pairs else pairs[("b", "a")]
    assert ab["better"] == "a" and ab["mean_difference"] == pytest.approx(0.02) and ab["resolved"]
    assert ab["ci95"][0] == pytest.approx(0.02) and ab["ci95"][1] == pytest.approx(0.02)
    ac = next(p for p in table["paired"] if {p["better"], p["worse"]} == {"a", "c"})
    assert not ac["resolved"] and ac["ci95"][0] < 0 < ac["ci95"][1]
    assert table["methods"]["a"]["insertion_minus_deletion"]["sd"] > 0.2     # the unpaired spread
    assert len(table["paired"]) == 3


@pytest.mark.parametrize("kind", S.methods.BASELINES)
def test_integrated_gradients_completeness_for_every_baseline(kind):
    net = golden_network(dict(np.load(os.path.join(DATA, "golden_vgg.npz"))), np.float64)
    net.meta["preprocessing"] = PLAIN
    x = np.random.default_rng(3).uniform(0, 1, (1, 3, 40, 36))
    r = S.run_method("integrated", net, x, [2], {"steps": 128, "baseline_kind": kind, "seed": 4})
    c = r.completeness[0]
    assert abs(c["sum_of_attributions"] - c["score_difference"]) < 0.03 * abs(c["score_difference"]) + 1e-9
    base = S.methods.baseline_image(kind, x[0], seed=4)
    ends = net.forward(np.stack([x[0], base]))[:, 2]
    assert c["score_difference"] == pytest.approx(ends[0] - ends[1])


def test_baseline_images():
    x = np.random.default_rng(5).uniform(0, 1, (3, 32, 32))
    blurred = S.methods.baseline_image("blur", x)
    assert blurred.shape == x.shape and blurred.std() < 0.5 * x.std()
    assert abs(blurred.mean() - x.mean()) < 0.01
    noise = S.methods.baseline_image("noise", x, seed=1)
    assert 0 <= noise.min() and noise.max() <= 1 and np.array_equal(noise, S.methods.baseline_image("noise", x, seed=1))
    assert (S.methods.baseline_image("grey", x) == 0.5).all()


def test_sanity_across_images():
    runs = [{"randomized_from_the_top": ["b", "a"], "spearman": {"m": [1.0, 0.5]},
             "floor": {"m": {"edges": 0.2, "fully_random": 0.5}}},
            {"randomized_from_the_top": ["b", "a"], "spearman": {"m": [0.0, 0.5]},
             "floor": {"m": {"edges": 0.4, "fully_random": 0.5}}}]
    together = sanity.across_images(runs)
    assert together["spearman"]["m"] == {"mean": [0.5, 0.5], "sd": [0.5, 0.0]} and together["images"] == 2
    assert together["floor"]["m"]["edges"] == {"mean": pytest.approx(0.3), "sd": pytest.approx(0.1)}


def test_edge_map_by_hand():
    """Sobel on a vertical step: the two columns beside the step answer 4 (the 1-2-1 sum of a
    step of 1), every other pixel 0; the largest colour channel counts."""
    x = np.zeros((1, 3, 5, 6))
    x[0, 1, :, 3:] = 1.0
    e = sanity.edge_map(x)
    assert e.shape == (5, 6) and np.allclose(e[:, 2:4], 4) and np.allclose(e[:, [0, 1, 4, 5]], 0)


def test_npz_keeps_signs_and_evaluate_reports(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "minicnn.saliency", *args], capture_output=True, text=True)
    done = run(EXAMPLES[0], "--method", "all", "--outdir", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    stem = os.path.splitext(os.path.basename(EXAMPLES[0]))[0]
    vanilla = np.load(tmp_path / f"{stem}_vanilla.npz")
    assert np.allclose(vanilla["signed"], vanilla["gradient"].sum(axis=0))
    assert (vanilla["signed"] > 0).any() and (vanilla["signed"] < 0).any()
    occl = np.load(tmp_path / f"{stem}_occlusion.npz")
    assert np.array_equal(occl["signed"], occl["occlusion"]) and np.array_equal(occl["saliency"], np.maximum(occl["occlusion"], 0))
    cam = np.load(tmp_path / f"{stem}_gradcam.npz")
    # upsampled before / after the ReLU: equal away from the sign boundaries
    assert (cam["signed"] < 0).any() and np.corrcoef(np.maximum(cam["signed"], 0).ravel(), cam["saliency"].ravel())[0, 1] > 0.95
    done = run(EXAMPLES[0], EXAMPLES[1], "--evaluate", "--method", "vanilla", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["summary"]["ranking"]) == {"vanilla", "random"}
    assert len(report["scores"]["vanilla"]["deletion"]) == 2


def test_batch_size_changes_nothing_but_speed():
    """SmoothGrad, integrated gradients and occlusion give the same result whatever the
    batch (--batch): one copy at a time, uneven chunks, or all at once."""
    net = make_vgg(((4,), (6,)), (8,), 3, (3, 12, 12), seed=2)
    net.meta["preprocessing"] = SHAPES
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, 12, 12))
    for method, options in (("smoothgrad", {"samples": 7}), ("integrated", {"steps": 9}),
                            ("integrated", {"steps": 5, "baseline_kind": "blur"}),
                            ("occlusion", {"patch": 4, "stride": 2})):
        results = [S.run_method(method, net, x, [0, 2], dict(options, batch=b)) for b in (1, 3, 1000)]
        for r in results[1:]:
            assert rel_error(r.signed, results[0].signed) < 1e-12, (method, options)


def test_batch_is_capped_by_memory_not_by_the_user():
    """--batch 1000 on VGG19 would need about 70 GB (70 MB a copy, measured with tracemalloc):
    the methods cap it below 10 GB even by the measured size, without touching the default 25;
    a small network keeps what was asked."""
    from minicnn.vgg19 import vgg19
    assert 25 <= S.batch_limit(vgg19(init=False), 1000) <= 10e9 // 70e6
    assert S.batch_limit(vgg19(init=False), 5) == 5
    assert S.batch_limit(make_vgg(((4,), (6,)), (8,), 3, (3, 12, 12), seed=2), 1000) == 1000


# ------------------------------------------------------------------------------------------------
# The data randomization test: a twin trained on shuffled labels


def _saliency_cli(*args, home):
    env = dict(os.environ, MINICNN_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "minicnn.saliency", *args], capture_output=True, text=True, env=env)


def test_data_randomization_reads_the_twin_it_is_given(tmp_path, monkeypatch):
    """--sanity data against a twin that is the model itself gives correlation 1 for every
    map; against a random twin (the world architecture, fresh weights) it does not. Without a
    twin, or with --weights, one line and exit 2."""
    from fixtures import assert_one_line_error
    from minicnn import curves
    from minicnn.weights import load_model, save_network
    from minicnn.weights.cache import trained_path
    home = tmp_path / "home"
    image = next(p for p in EXAMPLES if p.endswith("face.png"))
    done = _saliency_cli(image, "--sanity", "data", "--outdir", str(tmp_path), home=home)
    assert_one_line_error(done, "--shuffle-labels")
    assert os.listdir(tmp_path) == ["home"] or os.listdir(tmp_path) == []
    net = load_model("world")
    monkeypatch.setenv("MINICNN_HOME", str(home))
    path = trained_path("world-shuffled")
    meta = dict(preprocessing=net.meta["preprocessing"], class_names=net.class_names)
    for twin, expected in ((net, "same"), (curves.random_copy(net, seed=3), "different")):
        save_network(twin, path, source="test twin", **meta)
        done = _saliency_cli(image, "--sanity", "data", "--method", "vanilla", "--json", "--outdir", str(tmp_path),
                             home=home)
        assert done.returncode == 0, done.stderr
        r = json.loads(done.stdout)[0]["spearman"]["vanilla"]
        assert (r == pytest.approx(1.0)) if expected == "same" else (r < 0.9), (expected, r)
    assert os.path.isfile(tmp_path / "face_sanity_data.png") and os.path.isfile(tmp_path / "face_sanity_data.json")
    assert_one_line_error(_saliency_cli(image, "--sanity", "data", "--weights", path, home=home), "--weights")


def test_shuffle_labels_permutes_the_training_labels(monkeypatch, tmp_path):
    """train --shuffle-labels trains on the same images with their labels permuted: the same
    counts per class, most labels moved; and it records that it did."""
    from minicnn import train as T
    from minicnn import world
    seen = {}

    def fake_train(net, images, labels, **kw):
        seen["images"], seen["labels"] = images, labels
        return [{"epoch": 1, "loss": 0.0, "train_accuracy": 0.0}]
    monkeypatch.setattr(T, "train", fake_train)
    monkeypatch.setattr(T, "evaluate", lambda net, images, labels: 0.1)
    out = tmp_path / "twin.h5"
    T.main(["--shuffle-labels", "--train-size", "200", "--val-size", "10", "--out", str(out), "--quiet"])
    images, labels, _ = world.make_dataset(200, seed=1)
    assert np.array_equal(seen["images"], images)
    assert np.array_equal(np.bincount(seen["labels"]), np.bincount(labels)) and (seen["labels"] != labels).mean() > 0.7
    record = json.loads((tmp_path / "twin-training.json").read_text())
    assert record["shuffled_labels"] is True and "--shuffle-labels" in record["command"]
