"""minicnn's cache: retrained models found by name, list/path/remove, and VGG19 files that
PyTorch or Keras already downloaded reused only when their checksums are right."""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from fixtures import EXAMPLES, assert_one_line_error, layers_output, run, write_torch_legacy
from minicnn.vgg19 import make_vgg
from minicnn.weights import WeightsError, fetch_vgg19, load_network
from minicnn.weights import cache, sources


def test_a_retrained_model_is_found_by_name_listed_and_removed(tmp_path):
    """train keeps its model in the cache under a name; --model NAME loads it in every command;
    weights list/path/remove manage it; a bad name is refused before any training."""
    env = dict(os.environ, MINICNN_HOME=str(tmp_path / "home"))
    quick = ["--model", "shapes", "--epochs", "1", "--train-size", "64", "--val-size", "8", "--quiet"]
    done = run("minicnn.train", *quick, "--name", "tiny", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "home" / "trained" / "tiny.h5"
    assert path.is_file() and (tmp_path / "home" / "trained" / "tiny-training.json").is_file()
    assert os.listdir(tmp_path) == ["home"]                       # nothing written where it ran

    predicted = run("minicnn.predict", EXAMPLES[0], "--model", "tiny", "--json", env=env)
    assert predicted.returncode == 0, predicted.stderr
    from minicnn.shapes import CLASSES
    assert {t["name"] for t in json.loads(predicted.stdout)[0]["top"]} <= set(CLASSES)   # the shapes model's
    listed = run("minicnn.weights", "list", env=env)
    assert "trained/tiny" in listed.stdout, listed.stdout
    assert run("minicnn.weights", "path", "tiny", env=env).stdout.strip() == str(path)
    assert run("minicnn.weights", "path", env=env).stdout.strip() == str(tmp_path / "home")
    assert run("minicnn.weights", "info", "--model", "tiny", env=env).returncode == 0

    removed = run("minicnn.weights", "remove", "tiny", env=env)
    assert removed.returncode == 0 and not path.exists()
    assert os.listdir(tmp_path / "home" / "trained") == []         # the training record went too
    assert_one_line_error(run("minicnn.predict", EXAMPLES[0], "--model", "tiny", env=env), "unknown model")
    assert_one_line_error(run("minicnn.predict", EXAMPLES[0], "--model", "wrld", env=env), "did you mean 'world'")
    assert_one_line_error(run("minicnn.weights", "remove", "tiny", env=env), "no cache entry")

    for bad in ("../evil", "a/b", ".hidden", "x.h5", "world"):
        assert_one_line_error(run("minicnn.train", *quick, "--name", bad, env=env), "--name" if bad == "world" else "model name")
    assert os.listdir(tmp_path / "home" / "trained") == []


def test_default_name_is_model_retrained(tmp_path, monkeypatch):
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    assert cache.trained_path("world-retrained") == str(tmp_path / "trained" / "world-retrained.h5")
    assert cache.trained_names() == []
    os.makedirs(tmp_path / "trained")
    (tmp_path / "trained" / "b.h5").write_bytes(b"")
    (tmp_path / "trained" / "a.h5").write_bytes(b"")
    (tmp_path / "trained" / "notes.txt").write_bytes(b"")
    assert cache.trained_names() == ["a", "b"]


def test_cache_dir_follows_the_system_without_minicnn_home(monkeypatch, tmp_path):
    platformdirs = pytest.importorskip("platformdirs")
    monkeypatch.delenv("MINICNN_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == platformdirs.user_cache_dir("minicnn", appauthor=False)
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path / "mine"))
    assert cache.cache_dir() == str(tmp_path / "mine")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A small torch-format network standing in for torchvision's VGG19 file: its name, size
    and SHA-256 are what minicnn expects; TORCH_HOME and MINICNN_HOME point into tmp_path."""
    net = make_vgg(((8,), (16,)), (16,), 5, (3, 16, 16), seed=4)
    src = write_torch_legacy(net, str(tmp_path / "src.pth"))
    data = open(src, "rb").read()
    known = dict(url="http://127.0.0.1:9/vgg19-test.pth", size=len(data),
                 sha256=hashlib.sha256(data).hexdigest())
    monkeypatch.setitem(sources.SOURCES, ("torchvision", False), known)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path / "home"))
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    os.makedirs(checkpoints)
    return net, src, checkpoints / "vgg19-test.pth"


def test_a_torch_hub_copy_is_reused_without_a_download(hub, tmp_path):
    net, src, copy = hub
    shutil.copy(src, copy)
    notes = []
    path = fetch_vgg19("torchvision", log=notes.append, quiet=True)   # the URL (port 9) is never asked
    assert path == str(tmp_path / "home" / "vgg19-torchvision.h5")
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    assert np.array_equal(layers_output(load_network(path), x), layers_output(net, x))
    assert any(str(copy) in n for n in notes)
    assert copy.is_file()                                   # PyTorch's file is left where it was


@pytest.mark.parametrize("damage", ["one byte", "truncated", "longer"])
def test_a_torch_hub_copy_that_differs_is_refused(hub, tmp_path, damage):
    _, src, copy = hub
    data = bytearray(open(src, "rb").read())
    if damage == "one byte":
        data[len(data) // 2] ^= 1
    elif damage == "truncated":
        data = data[:-1]
    else:
        data += b"\0"
    copy.write_bytes(bytes(data))
    notes = []
    with pytest.raises(WeightsError, match="cannot download"):   # so it goes to the (offline) URL
        fetch_vgg19("torchvision", log=notes.append, quiet=True)
    assert any("not using" in n and str(copy) in n for n in notes)
    assert os.listdir(tmp_path / "home") == []


def test_keras_copies_are_looked_for_in_keras_home(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "k"))
    url = sources.SOURCES[("keras", True)]["url"]
    assert cache.framework_copies("keras", url) == [
        str(tmp_path / "k" / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")]


def test_a_url_given_by_hand_is_downloaded_not_matched_against_the_hub_copy(hub, tmp_path):
    """--url (a mirror, even one spelled like the official URL) means: fetch that URL and check
    the hash given with it; the framework copy (whose size is then unknown) is not consulted."""
    _, src, copy = hub
    shutil.copy(src, copy)
    known = sources.SOURCES[("torchvision", False)]
    with pytest.raises(WeightsError, match="cannot download"):
        fetch_vgg19("torchvision", url=known["url"], sha256=known["sha256"], quiet=True)
