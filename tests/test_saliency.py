"""Saliency methods against PyTorch autograd (tests/make_golden_saliency.py), a closed form,
and the command line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minicnn import saliency as S
from minicnn.gradcheck import rel_error
from minicnn.network import Layer, Network
from fixtures import EXAMPLES, assert_one_line_error, golden_network, hostile_images

DATA = os.path.join(os.path.dirname(__file__), "data")
PRESETS = {
    "keras": {"channel_order": "BGR", "scale": 255.0, "mean": [103.939, 116.779, 123.68], "std": [1.0, 1.0, 1.0]},
    "torchvision": {"channel_order": "RGB", "scale": 1.0, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}
# float64 runs must match the float64 references to round-off; float32 runs to 1e-4 (see
# test_network.py). Random pixels have no flat regions, so no max-pool ties blur the comparison.
TOL = {np.float64: 1e-9, np.float32: 1e-4}


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(os.path.join(DATA, "golden_vgg.npz"))), dict(np.load(os.path.join(DATA, "golden_saliency.npz")))


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_methods_match_pytorch(golden, preset, dtype):
    g, s = golden
    net = golden_network(g, dtype)
    net.meta["preprocessing"] = PRESETS[preset]
    pixels, targets, tol = s["pixels"].astype(dtype), list(s["targets"]), TOL[dtype]

    r = S.vanilla(net, pixels, targets)
    assert rel_error(r.attribution, s[f"{preset}/gradient"]) < tol
    assert rel_error(r.saliency, s[f"{preset}/saliency"]) < tol

    sg = [S.smoothgrad(net, pixels[n:n + 1], [targets[n]], noise_tensor=s["noise"]).attribution[0]
          for n in range(len(targets))]
    assert rel_error(np.stack(sg), s[f"{preset}/smoothgrad"]) < tol

    ig = S.integrated(net, pixels, targets, steps=int(s["steps"]))
    assert rel_error(ig.attribution, s[f"{preset}/integrated"]) < tol

    assert rel_error(S.guided(net, pixels, targets).attribution, s[f"{preset}/guided"]) < tol

    cam = S.gradcam(net, pixels, targets, layer=str(s["cam_layer"]))
    assert cam.settings["layer"] == "relu3_1" == S.last_conv_relu(net)
    assert (s[f"{preset}/cam"] > 0).mean() > 0.1        # a golden map that is not all zeros
    assert (s[f"{preset}/cam_signed"] < 0).mean() > 0.1  # ... and one that the ReLU really cuts
    assert rel_error(cam.cam_signed, s[f"{preset}/cam_signed"]) < tol
    assert rel_error(cam.cam, s[f"{preset}/cam"]) < tol
    assert rel_error(cam.saliency, s[f"{preset}/cam_upsampled"]) < tol


def linear_model(preset, seed=0):
    """logit = w . preprocess(pixels) + b: its pixel gradient is known in closed form."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3 * 5 * 6))
    net = Network([Layer("flatten", "flatten"), Layer("fc", "linear", w=w, b=rng.standard_normal(4))],
                  input_shape=(3, 5, 6))
    net.meta["preprocessing"] = PRESETS[preset]
    return net, w


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_closed_form_on_a_linear_model(preset):
    net, w = linear_model(preset)
    prep = PRESETS[preset]
    pixels = np.random.default_rng(1).uniform(0, 1, (2, 3, 5, 6))
    expected = w[[1, 3]].reshape(2, 3, 5, 6) * prep["scale"] / np.array(prep["std"])[:, None, None]
    if prep["channel_order"] == "BGR":   # input channel k holds pixel channel 2 - k
        expected = expected[:, ::-1]
    r = S.vanilla(net, pixels, [1, 3])
    assert rel_error(r.attribution, expected) < 1e-12
    sg = S.smoothgrad(net, pixels, [1, 3], samples=3)      # a constant gradient: noise changes nothing
    assert rel_error(sg.attribution, expected) < 1e-12
    ig = S.integrated(net, pixels, [1, 3], steps=3)
    assert rel_error(ig.attribution, pixels * expected) < 1e-12   # (x - 0) * grad
    for check in ig.completeness:                                  # exact for a linear model
        assert abs(check["sum_of_attributions"] - check["score_difference"]) < 1e-9


def test_integrated_gradients_completeness_improves_with_steps():
    g = dict(np.load(os.path.join(DATA, "golden_vgg.npz")))
    net = golden_network(g, np.float64)
    net.meta["preprocessing"] = PRESETS["torchvision"]
    pixels = np.random.default_rng(4).uniform(0, 1, (1, 3, 40, 36))
    gaps = []
    for steps in (4, 64):
        c = S.integrated(net, pixels, [3], steps=steps).completeness[0]
        gaps.append(abs(c["sum_of_attributions"] - c["score_difference"]) / abs(c["score_difference"]))
    assert gaps[1] < gaps[0] and gaps[1] < 0.05, gaps


def test_resolve_class():
    names = ["tabby", "tiger cat", "tiger", "Persian cat", "crane", "crane (machine)"]
    assert S.resolve_class("3", names) == 3
    assert S.resolve_class("TABBY", names) == 0
    assert S.resolve_class("persian", names) == 3            # unique prefix
    assert S.resolve_class("crane", names) == 4              # exact beats prefix
    with pytest.raises(ValueError, match="ambiguous: tiger cat \\(1\\), tiger \\(2\\)"):
        S.resolve_class("tig", names)
    with pytest.raises(ValueError, match="did you mean: tabby"):
        S.resolve_class("tabbby", names)
    with pytest.raises(ValueError, match="out of range"):
        S.resolve_class("6", names)


def test_rank_correlation():
    from minicnn.saliency.sanity import rankdata, spearman
    assert rankdata(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]
    a = np.random.default_rng(0).standard_normal(100)
    assert spearman(a, a ** 3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "minicnn.saliency", *args], capture_output=True, text=True, **kw)


def test_cli_writes_what_it_says(tmp_path):
    done = run(EXAMPLES[0], EXAMPLES[1], "--method", "all", "--outdir", str(tmp_path), "--json",
               "--samples", "4", "--steps", "8")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report) == 2
    keys = {"vanilla": "gradient", "smoothgrad": "attribution", "integrated": "attribution",
            "guided": "attribution", "gradcam": "cam"}
    for entry in report:
        stem = os.path.splitext(os.path.basename(entry["image"]))[0]
        assert entry["target_name"] == stem          # the examples are named by their class
        assert os.path.exists(entry["outputs"]["all"]["png"])
        for method, key in keys.items():
            z = np.load(entry["outputs"][method]["npz"])
            assert z["saliency"].shape == (64, 64) and int(z["target"]) == entry["target"]
            assert z["logits"].shape == (10,) and key in z.files
            if key != "cam":
                assert z[key].shape == (3, 64, 64)
                assert np.allclose(z["saliency"], np.abs(z[key]).max(axis=0))
        assert "completeness" in entry
    done = run(EXAMPLES[2], "--outdir", str(tmp_path), "--class", "car")
    assert done.returncode == 0, done.stderr
    assert "explained: car (1)" in done.stdout
    z = np.load(tmp_path / (os.path.splitext(os.path.basename(EXAMPLES[2]))[0] + "_vanilla.npz"))
    assert int(z["target"]) == 1 and z["gradient"].shape == (3, 64, 64)


def test_cli_refusals_write_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name, message in hostile_images(tmp_path).items():
        assert_one_line_error(run(str(tmp_path / name), "--outdir", str(out)), message)
    assert_one_line_error(run(EXAMPLES[0], "--class", "hexagon", "--outdir", str(out)), "unknown class 'hexagon'")
    assert_one_line_error(run(EXAMPLES[0], "--class", "f", "--outdir", str(out)), "ambiguous")
    assert_one_line_error(run(EXAMPLES[0], "--class", "99", "--outdir", str(out)), "out of range")
    assert_one_line_error(run(EXAMPLES[0], "--method", "gradcam", "--layer", "conv9_9", "--outdir", str(out)),
                          "unknown layer")
    (tmp_path / "file").write_text("in the way")
    assert_one_line_error(run(EXAMPLES[0], "--outdir", str(tmp_path / "file" / "sub")), "cannot create")
    # a good image with a bad one: nothing is written for either
    assert_one_line_error(run(EXAMPLES[0], str(tmp_path / "truncated.png"), "--outdir", str(out)), "truncated")
    assert os.listdir(out) == []
