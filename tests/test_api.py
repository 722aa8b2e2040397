"""minicnn from Python: every accepted image form and each refused one, targets, layer aliases,
figures that leave pyplot alone, and the package's own entry points."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import minicnn
from fixtures import EXAMPLES, ROOT
from minicnn.errors import ImageError, UsageError

FACE = os.path.join(ROOT, "examples", "face.png")


@pytest.fixture(scope="module")
def net():
    return minicnn.load_model()


def image_forms():
    pil = Image.open(FACE).convert("RGB")
    hwc = np.asarray(pil)
    return {"path": FACE, "pathlike": __import__("pathlib").Path(FACE), "pil": pil, "hwc uint8": hwc,
            "rgba uint8": np.dstack([hwc, np.full(hwc.shape[:2], 255, np.uint8)]),
            "chw float": hwc.transpose(2, 0, 1).astype(np.float32) / 255}


@pytest.mark.parametrize("form", list(image_forms()))
def test_every_image_form_gives_the_same_pixels(form):
    expected = minicnn.load_image(FACE, 64)
    assert np.allclose(minicnn.load_image(image_forms()[form], 64), expected, atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("bad, fragment", [
    (np.full((3, 64, 64), 200.0), "in [0, 1]"),              # 0..255 passed as floats
    (np.full((3, 64, 64), np.nan), "in [0, 1]"),
    (np.zeros((64, 64, 3), np.float32), "(3, H, W) float"),  # float HWC: ambiguous, refused
    (np.zeros((5, 64, 64), np.uint8), "(H, W, 3) uint8"),
    (42, "from a int"),
    ([], "no images"),
])
def test_refused_image_forms(bad, fragment):
    with pytest.raises(ImageError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        minicnn.load_images(bad, 64)


def test_predict_call_and_summary(net):
    top = net.predict(FACE, top=3)
    assert top[0][:2] == (0, "face") and len(top) == 3 and abs(sum(p for _, _, p in top) - 1) < 0.01
    both = net.predict([FACE, os.path.join(ROOT, "examples", "car.png")], top=1)
    assert [row[0][1] for row in both] == ["face", "car"]
    x = minicnn.load_images(FACE, 64)                  # pixels: the model preprocesses them
    y = net(x)
    assert np.array_equal(y, net.forward(x)) and int(y[0].argmax()) == 0
    text = str(net.summary())
    assert "conv3_1" in text and "557,082" in text and "RF px" in text


def test_explain_targets_and_results(net):
    e = minicnn.explain(net, FACE)
    assert isinstance(e, minicnn.Explanation) and e.target_name == "face" and e.method == "vanilla"
    assert e.map.shape == e.signed.shape == (64, 64) and e.attribution.shape == (3, 64, 64)
    assert np.allclose(e.signed, e.attribution.sum(axis=0))
    by_name = minicnn.explain(net, FACE, target="car")
    by_index = minicnn.explain(net, FACE, target=1)
    assert by_name.target == by_index.target == 1 and np.array_equal(by_name.map, by_index.map)
    pair = minicnn.explain(net, [FACE, FACE], target=["face", "clock"], method="gradcam", layer="block3_conv2")
    assert [p.target_name for p in pair] == ["face", "clock"] and "conv3_2" in pair[0].settings
    with pytest.raises(UsageError, match="2 targets for 1 images"):
        minicnn.explain(net, [FACE], target=[0, 1])
    with pytest.raises(UsageError, match="unknown class"):
        minicnn.explain(net, FACE, target="zebra")
    with pytest.raises(UsageError, match="unknown method"):
        minicnn.explain(net, FACE, method="magic")


@pytest.mark.parametrize("methods, unit", [(["vanilla"], None), (["guided"], None), (["gradcam"], None),
                                           (["vanilla"], "conv3_1:5"), (["gradcam", "vanilla"], None)])
def test_a_one_pass_method_run_first_is_the_jobs_only_forward(net, monkeypatch, methods, unit):
    """The scores come from the first method's own pass: a vanilla map is one forward and one
    backward, not an extra forward to score the image first. The answers are those of the
    method run on its own."""
    from minicnn.network import Network
    from minicnn.saliency import methods as M
    from minicnn.saliency.explain import explain
    from minicnn.saliency.targets import parse_unit
    x = minicnn.load_images([FACE, os.path.join(ROOT, "examples", "car.png")], 64)
    runs = []
    plain_run = Network.run
    monkeypatch.setattr(Network, "run", lambda self, *a, **k: runs.append(1) or plain_run(self, *a, **k))
    job = explain(net, x, methods, unit=unit)
    assert len(runs) == len(methods)
    targets = [parse_unit(net, unit)] * 2 if unit else [0, 1]
    assert job.targets == targets
    expected = M.run_method(methods[0], net, x, targets, job.options)
    assert np.array_equal(job.results[methods[0]].attribution if methods[0] != "gradcam" else job.results["gradcam"].cam,
                          expected.attribution if methods[0] != "gradcam" else expected.cam)
    if unit is None:
        assert np.array_equal(job.scores, expected.logits)


def test_maximize_with_aliases(net):
    v = minicnn.maximize(net, "block3_conv1:2-3", steps=3, progress=False)
    assert v.layer == "conv3_1" and v.channels == [2, 3] and v.images.shape == (2, 3, 128, 128)
    assert minicnn.maximize(net, "fc6:0", steps=2, progress=False).images.shape == (1, 3, 64, 64)
    with pytest.raises(UsageError, match="which channel"):
        minicnn.maximize(net, "conv3_1")
    with pytest.raises(UsageError, match="unknown layer"):
        minicnn.maximize(net, "conv9_9:0")


def test_figures_leave_pyplot_alone(tmp_path):
    """A figure is a matplotlib Figure returned to the caller: pyplot is never imported and the
    backend a notebook chose stays chosen."""
    code = ("import sys, matplotlib; matplotlib.use('svg'); import minicnn; net = minicnn.load_model(); "
            "f = minicnn.explain(net, sys.argv[1]).plot(); g = minicnn.maximize(net, 'conv1_1:0', steps=1, "
            "progress=False).plot(sys.argv[2]); from matplotlib.figure import Figure; "
            "assert isinstance(f, Figure) and isinstance(g, Figure); "
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend(); "
            "assert 'matplotlib.pyplot' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code, FACE, str(tmp_path / "g.png")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_package_entry_points():
    assert minicnn.__version__
    done = subprocess.run([sys.executable, "-m", "minicnn"], capture_output=True, text=True)
    assert done.returncode == 0 and "saliency" in done.stdout and "visualize" in done.stdout
    done = subprocess.run([sys.executable, "-m", "minicnn", "--version"], capture_output=True, text=True)
    assert done.stdout.strip() == f"minicnn {minicnn.__version__}"
    done = subprocess.run([sys.executable, "-m", "minicnn", "predict", EXAMPLES[0], "--top", "1"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "100.0%" in done.stdout


def test_progress_bars_from_python_and_quiet_commands(net, capsys, tmp_path):
    """From Python, progress=True draws a tqdm.auto bar (text here, a widget in Jupyter) and
    progress=False none; the curves command draws none on a pipe."""
    from minicnn.curves import analyze
    minicnn.maximize(net, "conv1_1:0", steps=3, progress=True)
    assert "3/3" in capsys.readouterr().err
    minicnn.maximize(net, "conv1_1:0", steps=3, progress=False)
    analyze(net, "conv2_1", null_copies=2, orientations=8, progress=False)
    assert capsys.readouterr().err == ""
    analyze(net, "conv2_1", null_copies=2, orientations=8, progress=True)
    assert "3/3" in capsys.readouterr().err                  # the network, then two random copies
    done = subprocess.run([sys.executable, "-m", "minicnn.curves", "conv2_1", "--orientations", "8",
                           "--null-copies", "1", "--vis-steps", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize("argv,options", [
    (["--method", "gradcam", "--layer", "fc7"], {"method": "gradcam", "layer": "fc7"}),
    (["--method", "gradcam", "--layer", "conv9_9"], {"method": "gradcam", "layer": "conv9_9"}),
    (["--unit", "relu3_2:4", "--class", "face"], {"unit": "relu3_2:4", "target": "face"}),
    (["--unit", "relu3_2:999"], {"unit": "relu3_2:999"}),
])
def test_the_api_and_the_command_refuse_alike(net, argv, options, tmp_path):
    """One job underneath (minicnn.saliency.explain): the same checks, the same sentence, from
    the command (one line, exit 2) and from Python (minicnn's own error)."""
    from fixtures import run
    done = run("minicnn.saliency", FACE, *argv, "--outdir", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert os.listdir(tmp_path) == []
    message = done.stderr[len("error: "):].strip()
    with pytest.raises(minicnn.MinicnnError) as caught:
        minicnn.explain(net, FACE, **options)
    assert str(caught.value).strip("'\"") == message


def test_an_unknown_option_is_an_error_not_ignored(net):
    with pytest.raises(UsageError, match="unknown option sample"):
        minicnn.explain(net, FACE, method="smoothgrad", sample=5)
