"""One input contract for commands and Python: one test per root cause of the failures a
hostile or careless user found (each seen failing before its fix). A command answers bad
input with one line and exit 2 and leaves nothing behind; the API raises minicnn's own error
with the same check. (The download named by its URL is in test_convert.py.)"""
import os
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

import minicnn
from fixtures import ROOT, assert_one_line_error, run
from minicnn.errors import ImageError, MinicnnError, UsageError, WeightsError

FACE = os.path.join(ROOT, "examples", "face.png")
CAR = os.path.join(ROOT, "examples", "car.png")


@pytest.fixture(scope="module")
def net():
    return minicnn.load_model()


def test_outputs_are_unique_across_the_run(tmp_path):
    """a/face.png, b/face.png and face-2.png: three inputs, three sets of outputs (the second
    face is renamed past the name the third input already has)."""
    for folder, src in (("a", FACE), ("b", CAR)):
        os.makedirs(tmp_path / folder)
        shutil.copy(src, tmp_path / folder / "face.png")
    shutil.copy(FACE, tmp_path / "face-2.png")
    done = run("minicnn.saliency", "a/face.png", "b/face.png", "face-2.png", "--outdir", "o", "--json",
               cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    import json
    npzs = [entry["outputs"]["vanilla"]["npz"] for entry in json.loads(done.stdout)]
    assert len(set(npzs)) == 3 and sorted(os.listdir(tmp_path / "o")) == sorted(
        os.path.basename(p)[:-4] + ext for p in npzs for ext in (".npz", ".png"))
    assert os.path.basename(npzs[2]) == "face-2_vanilla.npz"    # an input keeps its own name
    car = np.load(tmp_path / npzs[1])
    assert int(car["target"]) == 1                      # the car's maps are the car's


def test_an_empty_name_is_refused_not_defaulted(tmp_path):
    done = run("minicnn.train", "--name", "", "--epochs", "1", env=dict(os.environ, MINICNN_HOME=str(tmp_path)))
    assert_one_line_error(done, "model name ''")
    assert not os.path.exists(tmp_path / "trained")


@pytest.mark.parametrize("options,fragment", [
    ({"method": "smoothgrad", "samples": 0}, "samples 0 is outside 1..1000"),
    ({"method": "integrated", "steps": 0}, "steps 0 is outside"),
    ({"method": "integrated", "steps": -5}, "steps -5"),
    ({"method": "occlusion", "stride": -1}, "stride -1"),
    ({"method": "occlusion", "patch": -5}, "patch -5"),
    ({"method": "smoothgrad", "noise": float("nan")}, "noise nan"),
    ({"method": "smoothgrad", "samples": 2.5}, "whole number"),
    ({"method": "smoothgrad", "sample": 5}, "unknown option sample"),
    ({"seed": -1}, "seed -1"),
    ({"method": "integrated", "baseline_kind": "pink"}, "unknown baseline 'pink'"),
    ({"method": "gradcam", "layer": "fc6"}, "Grad-CAM needs a convolutional layer"),
])
def test_the_api_checks_what_the_command_checks(net, options, fragment):
    with pytest.raises(UsageError, match=fragment.replace(".", r"\.")):
        minicnn.explain(net, FACE, **options)


@pytest.mark.parametrize("options,fragment", [
    ({"steps": 0}, "steps 0"), ({"lr": float("nan")}, "lr nan"), ({"size": 1}, "size 1"),
    ({"size": 100_000}, "size 100000"), ({"seed": -1}, "seed -1")])
def test_maximize_checks_its_numbers(net, options, fragment):
    with pytest.raises(UsageError, match=fragment):
        minicnn.maximize(net, "conv3_1:0", progress=False, **options)


def test_predict_checks_top(net):
    for top in ("x", 0, True):
        with pytest.raises(UsageError, match="top must be"):
            net.predict(FACE, top=top)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_only_regular_files_are_read(tmp_path):
    """A FIFO as an image, as --from or as --weights would block forever; a device or a folder
    is named as what it is."""
    fifo = str(tmp_path / "f.png")
    os.mkfifo(fifo)
    for command in (("minicnn.predict", fifo), ("minicnn.visualize", "conv3_1", "--from", fifo, "--steps", "1",
                                                "--out", str(tmp_path / "d.png")),
                    ("minicnn.predict", FACE, "--weights", fifo)):
        done = run(*command, timeout=60)
        assert_one_line_error(done, "not a regular file")
    assert_one_line_error(run("minicnn.predict", FACE, "--weights", os.devnull), "not a regular file")
    assert_one_line_error(run("minicnn.predict", FACE, "--weights", str(tmp_path)), "is a folder, not a weight file")
    with pytest.raises(ImageError, match="not a regular file"):
        minicnn.load_image(fifo, 64)


def test_memory_is_bounded_before_any_work(tmp_path):
    from minicnn.vgg19 import vgg19
    vgg = vgg19(seed=0, init=False)                   # shapes only: nothing is computed
    with pytest.raises(UsageError, match="GiB, over minicnn's bound"):
        minicnn.maximize(vgg, "conv4_2:0-127", size=1024, progress=False)
    done = run("minicnn.train", "--val-size", "1000000", env=dict(os.environ, MINICNN_HOME=str(tmp_path)))
    assert_one_line_error(done, "GiB in memory", "use fewer images")


def test_only_ascii_digits_are_numbers(tmp_path, net):
    assert_one_line_error(run("minicnn.visualize", "conv3_1:\u00b3", "--out", str(tmp_path / "v.png")),
                          "bad channel")
    assert_one_line_error(run("minicnn.saliency", FACE, "--class", "\u00b3", "--outdir", str(tmp_path)),
                          "unknown class")
    with pytest.raises(UsageError, match="unknown class"):
        minicnn.explain(net, FACE, target="\u00b3")


def test_odd_arrays_and_images_from_python_are_refused(net, tmp_path):
    with pytest.raises(ImageError, match="empty array"):
        minicnn.load_image(np.zeros((3, 0, 0), np.float32), 64)
    with pytest.raises(ImageError, match="size must be"):
        minicnn.load_image(FACE, 0)
    assert minicnn.explain(net, FACE, target=np.array(0)).target_name == "face"     # a 0-d target
    data = open(os.path.join(ROOT, "examples", "photos", "coffee.jpg"), "rb").read()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[:len(data) // 3])
    with pytest.raises(ImageError, match="truncated"):
        minicnn.load_image(Image.open(cut), 64)          # opened lazily: fails when decoded
    holes = np.ones((40, 40), np.float32)
    holes[3, 3] = np.nan
    Image.fromarray(holes, mode="F").save(tmp_path / "holes.tif")
    with pytest.raises(ImageError, match="NaN"):
        minicnn.load_image(str(tmp_path / "holes.tif"), 64)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line():
    import subprocess
    for extra in ((), ("--json",)):
        with open("/dev/full", "w") as full:
            done = subprocess.run([sys.executable, "-m", "minicnn.predict", FACE, *extra], stdout=full,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 2 and done.stderr.startswith("error: cannot write the output"), done.stderr
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_removing_from_a_cache_that_refuses_is_one_line(tmp_path, monkeypatch):
    from minicnn.weights import cache
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    os.makedirs(tmp_path / "trained")
    (tmp_path / "trained" / "m.h5").write_bytes(b"x")
    monkeypatch.setattr(cache.os, "remove", lambda path: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(WeightsError, match="cannot remove .*read-only"):
        cache.remove("m")


def test_a_refused_run_leaves_nothing_behind(tmp_path):
    """The output folder is checked but made only when the first file is written; an output
    name too long for the filesystem is refused before the first input's files are written."""
    out = tmp_path / "deep" / "out"
    assert_one_line_error(run("minicnn.saliency", FACE, "--class", "nosuch", "--outdir", str(out)), "unknown class")
    assert not os.path.exists(tmp_path / "deep")
    long = tmp_path / ("x" * 240 + ".png")
    shutil.copy(FACE, long)
    done = run("minicnn.saliency", FACE, str(long), "--outdir", str(out))
    assert_one_line_error(done, "too long for this filesystem")
    assert not os.path.exists(tmp_path / "deep")


def test_messages_name_the_users_own_words(tmp_path):
    """A cache folder that cannot be made is the cache folder (--name), not --out."""
    done = run("minicnn.train", "--name", "x", env=dict(os.environ, MINICNN_HOME=os.path.join(os.devnull, "c")))
    assert_one_line_error(done, "--name: minicnn's cache folder", "cannot create it")
    assert isinstance(UsageError("x"), MinicnnError)
