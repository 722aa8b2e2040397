"""Hostile and careless input, by class (issue: every weight file, URL, path and number a user
can pass is handled). Every file here is made by the test itself; no torch needed. The contract:
one line on stderr, exit status 2, nothing half-written, nothing executed, bounded memory."""
import http.server
import json
import os
import signal
import socketserver
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from fixtures import refused as refused_as
from fixtures import (assert_one_line_error, getattr_exploit, run, shared_tuple_bomb, write_keras,
                      write_legacy_with_pickle, write_torch_legacy, write_torch_zip, write_torch_zip_views)
from minicnn.errors import WeightsError
from minicnn.vgg19 import make_vgg
from minicnn.weights import convert, download, load_network, save_network
from minicnn.weights.validate import MAX_PARAMS

PREP = {"channel_order": "RGB", "scale": 1.0, "mean": [0.5] * 3, "std": [0.25] * 3}


def small_net(seed=3, blocks=((4, 4), (6,)), fc=(12,), classes=5, size=16):
    net = make_vgg(blocks, fc, classes, (3, size, size), seed=seed)
    net.meta["preprocessing"] = PREP
    net.class_names = [f"class {i}" for i in range(classes)]
    return net


def saved(tmp_path, net=None, name="ok.h5"):
    net = net or small_net()
    path = str(tmp_path / name)
    save_network(net, path, "test", PREP, class_names=net.class_names)
    return path


def edit_attr(path, key, transform):
    """Rewrite one JSON attribute of a minicnn file (as an attacker with a hex editor would)."""
    with h5py.File(path, "r+") as f:
        value = json.loads(f.attrs[key])
        f.attrs[key] = json.dumps(transform(value))


def refused(fn, *fragments):
    return refused_as(fn, *fragments, error=WeightsError)


# ------------------------------------------------------------------------------------------------
# 1. Local file disclosure, writes outside the output folder, escape sequences


def test_keras_dataset_stored_in_another_file_is_refused(tmp_path):
    """A Keras kernel whose bytes live in /etc/passwd-like local files (external storage), an
    external link, a soft link and a virtual dataset: each refused; the secret never lands."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" * 16)
    net = small_net()

    def variant(name, change):
        path = str(tmp_path / f"{name}.h5")
        write_keras(net, path)
        with h5py.File(path, "r+") as f:
            group = f["block1_conv1"]
            wn = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
            shape, dtype = group[wn].shape, group[wn].dtype
            del group[wn]
            change(f, group, wn, shape, dtype)
        return path

    external = variant("external", lambda f, g, wn, shape, dtype: g.create_dataset(
        wn, shape=shape, dtype=dtype, external=[(str(secret), 0, int(np.prod(shape)) * 4)]))
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as o:
        o["k"] = np.zeros((3, 3, 3, 4), np.float32)
    extlink = variant("extlink", lambda f, g, wn, shape, dtype: g.__setitem__(wn, h5py.ExternalLink(other, "/k")))
    softlink = variant("softlink", lambda f, g, wn, shape, dtype: g.__setitem__(wn, h5py.SoftLink(g.name + "/" + wn)))

    def virtual(f, g, wn, shape, dtype):
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        layout[...] = h5py.VirtualSource(other, "k", shape=shape)
        g.create_virtual_dataset(wn, layout)
    virt = variant("virtual", virtual)
    for path, fragment in ((external, "outside the file"), (extlink, "ExternalLink"), (softlink, "SoftLink"),
                           (virt, "outside the file")):
        refused(lambda: convert(path, str(tmp_path / "out.h5")), fragment)
    assert not (tmp_path / "out.h5").exists()


def test_minicnn_file_with_external_storage_is_refused(tmp_path):
    path = saved(tmp_path)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(4 * 3 * 3 * 3, np.float32).tobytes())
    with h5py.File(path, "r+") as f:
        del f["conv1_1/weight"]
        f.create_dataset("conv1_1/weight", shape=(4, 3, 3, 3), dtype="f4", external=[(str(secret), 0, 432)])
    refused(lambda: load_network(path), "outside the file")


@pytest.mark.parametrize("name", ["/tmp/x/EVIL_relu", "../up", "a/b", "", "x" * 65, "ok\x1b[31m", ".hidden", 7])
def test_unsafe_layer_names_are_refused(tmp_path, name):
    path = saved(tmp_path)
    edit_attr(path, "layers", lambda spec: [dict(e, name=name) if e["name"] == "relu1_1" else e for e in spec])
    refused(lambda: load_network(path), "not allowed")


@pytest.mark.parametrize("bad", ["tabby\x1b[2J", "line\nbreak", "", "x" * 201])
def test_class_names_must_be_printable(tmp_path, bad):
    net = small_net()
    path = saved(tmp_path, net)
    with h5py.File(path, "r+") as f:
        names = [n.decode() for n in f["class_names"][()]]
        names[2] = bad
        del f["class_names"]
        f.create_dataset("class_names", data=np.array(names, dtype=h5py.string_dtype()))
    refused(lambda: load_network(path), "class name 2")


def test_output_names_are_built_from_checked_parts():
    from minicnn.errors import UsageError
    from minicnn.files import output_name
    assert output_name("conv3_1", "0-15", suffix=".png") == "conv3_1_0-15.png"
    for part in ("/tmp/x/EVIL", "..", "a/b", ""):
        with pytest.raises(UsageError):
            output_name(part, "curves")


# ------------------------------------------------------------------------------------------------
# 2. Memory and CPU bombs from small files


def test_shared_tuple_pickle_bomb_is_refused_at_once(tmp_path):
    """A 400-byte pickle whose dict key stands for 2**64 values: refused by the opcode scan
    before anything is built (plain pickle would hash it forever, ignoring Ctrl-C)."""
    path = write_legacy_with_pickle(str(tmp_path / "bomb.pth"), shared_tuple_bomb(64))
    t = time.perf_counter()
    refused(lambda: convert(path, str(tmp_path / "out.h5")), "resource bomb")
    assert time.perf_counter() - t < 5


def test_deeply_nested_pickle_is_refused(tmp_path):
    deep = b"\x80\x02" + b"]" * 5000 + b"." # 5000 EMPTY_LISTs, never closed: malformed and deep
    refused(lambda: convert(write_legacy_with_pickle(str(tmp_path / "d.pth"), deep), str(tmp_path / "o.h5")),
            "pickle")
    nested = b"\x80\x02" + b"(" * 100 + b")" + b"t" * 100 + b"."    # 100 nested tuples
    refused(lambda: convert(write_legacy_with_pickle(str(tmp_path / "n.pth"), nested), str(tmp_path / "o.h5")),
            "resource bomb")


def test_zip_member_that_inflates_is_refused(tmp_path):
    """A tensor of 12 floats whose storage record inflates to 64 MB: refused from the zip
    directory's declared size, never read whole."""
    path = write_torch_zip_views(str(tmp_path / "z.pth"), {
        "features.0.weight": (np.zeros(12, np.float32), (12,), (1,))}, compress_member=("0", b"\0" * (64 << 20)))
    assert os.path.getsize(path) < 1 << 20
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "holds 67,108,864 bytes")


def test_stride_zero_view_is_refused(tmp_path):
    """One stored float viewed as 20000 x 20000 (stride 0) would become 1.6 GB."""
    path = write_torch_zip_views(str(tmp_path / "s.pth"), {
        "features.0.weight": (np.ones(1, np.float32), (20000, 20000), (0, 0))})
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "repeats the values")


def test_never_written_dataset_claiming_gigabytes_is_refused(tmp_path):
    net = small_net()
    path = str(tmp_path / "k.h5")
    write_keras(net, path)
    with h5py.File(path, "r+") as f:
        group = f["block1_conv1"]
        wn = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]][0]
        del group[wn]
        group.create_dataset(wn, shape=(3, 3, 3, MAX_PARAMS // 20), dtype="f4", chunks=(3, 3, 3, 1024))
    assert os.path.getsize(path) < 1 << 20
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "more than")


@pytest.mark.parametrize("change, fragment", [
    (lambda spec: spec, None),                                             # control: loads
    (lambda spec: [dict(e, pad=100000) if e["kind"] == "conv" else e for e in spec], "'pad'"),
    (lambda spec: [dict(e, stride=0) if e["kind"] == "conv" else e for e in spec], "'stride'"),
    (lambda spec: [dict(e, kind="magic") if e["name"] == "relu1_1" else e for e in spec], "unknown kind"),
    (lambda spec: [dict(e, name="conv1_1") if e["name"] == "relu1_1" else e for e in spec], "two layers"),
    (lambda spec: [{k: v for k, v in e.items() if k != "shape"} if e["name"] == "conv1_2" else e
                   for e in spec], "'shape'"),
    (lambda spec: [dict(e, shape=[4, 5, 3, 3]) if e["name"] == "conv1_2" else e for e in spec], "takes 5 channels"),
    (lambda spec: spec[1:], "takes 4 channels"),                              # the first conv dropped
    (lambda spec: "not a list", "'layers'"),
])
def test_minicnn_metadata_is_validated(tmp_path, change, fragment):
    path = saved(tmp_path)
    edit_attr(path, "layers", change)
    if fragment is None:
        load_network(path)
    else:
        refused(lambda: load_network(path), fragment)


@pytest.mark.parametrize("attr, value, fragment", [
    ("input_shape", [3, 30000, 30000], "input_shape"),
    ("input_shape", [3, 16], "input_shape"),
    ("preprocessing", json.dumps({"channel_order": "XYZ"}), "preprocessing"),
    ("preprocessing", json.dumps({"std": [0, 1, 1]}), "preprocessing"),
    ("preprocessing", json.dumps({"scale": "NaN"}), "preprocessing"),
    ("preprocessing", "{not json", "not JSON"),
    ("format_version", "x", "format_version"),
])
def test_minicnn_attributes_are_validated(tmp_path, attr, value, fragment):
    path = saved(tmp_path)
    with h5py.File(path, "r+") as f:
        f.attrs[attr] = value
    refused(lambda: load_network(path), fragment)


# ------------------------------------------------------------------------------------------------
# 3. Values that convert "successfully" into broken files


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")   # the 1e300 case
@pytest.mark.parametrize("damage, fragment", [
    (lambda net: net.layers[0].w.__setitem__((0, 0, 0, 0), np.nan), "NaN or infinite"),
    (lambda net: net.layers[0].w.__setitem__((0, 0, 0, 0), 1e300), "NaN or infinite"),   # inf as float32
    (lambda net: setattr(net.layers[0], "b", np.zeros(3, np.float32)), ""),             # a wrong bias shape
    (lambda net: setattr(net.layers[0], "b", np.zeros((), np.float32)), ""),            # a 0-d bias
    (lambda net: setattr(net.layers[0], "w", np.zeros((4, 3, 0, 0), np.float32)), "shape"),
])
def test_broken_values_never_become_a_weight_file(tmp_path, damage, fragment):
    net = small_net()
    for _, layer in net.params():
        layer.w, layer.b = layer.w.astype(np.float64), layer.b.astype(np.float64)
    damage(net)
    for layout, writer in (("pth", write_torch_legacy), ("zip", write_torch_zip)):
        try:
            src = writer(net, str(tmp_path / f"src.{layout}"))
        except (ValueError, TypeError):
            continue                              # the writer itself cannot express it
        refused(lambda: convert(src, str(tmp_path / "out.h5")), fragment)
        assert not (tmp_path / "out.h5").exists()


def test_float16_infinity_is_refused(tmp_path):
    net = small_net()
    path = saved(tmp_path, net)
    with h5py.File(path, "r+") as f:
        w = f["conv1_1/weight"][()].astype(np.float16)
        w[0, 0, 0, 0] = np.inf
        del f["conv1_1/weight"]
        f["conv1_1/weight"] = w
    refused(lambda: load_network(path), "NaN or infinite")


def test_malformed_pickles_are_one_line(tmp_path):
    """REDUCE on a number, a truncated stream, an unknown opcode: ConvertError, not TypeError."""
    for k, data in enumerate([b"\x80\x02K\x05K\x01\x85R.", b"\x80\x02}q\x00(X\x01\x00", b"\x80\x02\xff."]):
        path = write_legacy_with_pickle(str(tmp_path / f"m{k}.pth"), data)
        refused(lambda: convert(path, str(tmp_path / "o.h5")), "pickle")


def test_encrypted_zip_member_is_one_line(tmp_path):
    path = write_torch_zip(small_net(), str(tmp_path / "z.pth"))
    data = bytearray(open(path, "rb").read())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):    # set the 'encrypted' flag bit
        start = 0
        while (i := data.find(signature, start)) >= 0:
            data[i + offset] |= 1
            start = i + 4
    open(path, "wb").write(bytes(data))
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "zip")


def test_getattr_in_a_pickle_is_refused_and_runs_nothing(tmp_path):
    """builtins.getattr would let a pickle climb from an allow-listed function to os.system."""
    marker = tmp_path / "pwned"
    path = write_legacy_with_pickle(str(tmp_path / "g.pth"), getattr_exploit(marker))
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "builtins.getattr")
    assert not marker.exists()


def test_output_that_is_a_device_is_refused(tmp_path):
    src = write_torch_legacy(small_net(), str(tmp_path / "w.pth"))
    assert_one_line_error(run("minicnn.weights", "convert", src, "-o", "/dev/null"), "not a regular file")
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def _fsize_limit():
    import resource
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)     # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    """Writes limited to 1 MB (RLIMIT_FSIZE, like a full disk): convert of a 2 MB network
    fails with one line and leaves no temporary file."""
    net = small_net(blocks=((64, 64), (64,)), fc=(64,), size=32)
    src = write_torch_legacy(net, str(tmp_path / "w.pth"))
    os.makedirs(tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "minicnn.weights", "convert", src, "-o", str(tmp_path / "out" / "w.h5")],
                          capture_output=True, text=True, preexec_fn=_fsize_limit)
    assert_one_line_error(done, "cannot write")
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("sig, status, text", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_signals_leave_no_debris_and_a_rerun_works(tmp_path, sig, status, text):
    """Signals at random points of a conversion (~1-2 s here): each run either finishes with a
    complete file, or stops with one line and leaves nothing; the rerun works."""
    net = small_net(blocks=((64, 64), (128, 128), (256, 256)), fc=(1024,), size=64)
    src = write_torch_legacy(net, str(tmp_path / "w.pth"))
    out = tmp_path / "out"
    os.makedirs(out)
    cmd = [sys.executable, "-m", "minicnn.weights", "convert", src, "-o", str(out / "w.h5")]
    t = time.perf_counter()
    assert subprocess.run(cmd, capture_output=True).returncode == 0
    whole = time.perf_counter() - t               # the signals land at points spread over one run
    os.remove(out / "w.h5")
    def interrupt(delay=None):
        """Signal one conversion after `delay` s, or (None) as soon as its temporary file
        appears, i.e. in the middle of the write; check what it left; return its exit code."""
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if delay is not None:
            time.sleep(delay)
        else:
            while p.poll() is None and not any(n.endswith(".part") for n in os.listdir(out)):
                time.sleep(0.001)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        left = os.listdir(out)
        assert left in ([], ["w.h5"]), left          # never a temporary file
        if left:                                     # written before the signal: it is complete
            load_network(str(out / "w.h5"))
            os.remove(out / "w.h5")
        if p.returncode not in (0, -sig):  # 0: finished first; -sig: still importing (Python's default)
            assert p.returncode == status and err.strip().endswith(text) and "Traceback" not in err, err
        return p.returncode

    for f in np.random.default_rng(sig).permutation([0.45, 0.55, 0.65, 0.75, 0.85]):
        interrupt(whole * f)              # anywhere: whatever the timing, a file or nothing
    codes = [interrupt() for _ in range(3)]
    assert status in codes, codes         # mid-write, the signal is handled by minicnn
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0 and os.listdir(out) == ["w.h5"]
    load_network(str(out / "w.h5"))


# ------------------------------------------------------------------------------------------------
# 4. Numbers and options: checked before any work, one line each


@pytest.mark.parametrize("args, fragment", [
    (("minicnn.saliency", "IMG", "--samples", "1e9"), "--samples"),
    (("minicnn.saliency", "IMG", "--samples", "1000000000"), "outside 1..1000"),
    (("minicnn.saliency", "IMG", "--noise", "nan"), "--noise"),
    (("minicnn.saliency", "IMG", "--seed", "-1"), "--seed"),
    (("minicnn.visualize", "conv1_1:0", "--steps", "1000000000"), "--steps"),
    (("minicnn.visualize", "conv1_1:0", "--lr", "inf"), "--lr"),
    (("minicnn.visualize", "conv1_1", "--channels", "0-9999999999"), "does not exist"),
    (("minicnn.curves", "conv1_1", "--orientations", "1000000"), "--orientations"),
    (("minicnn.train", "--lr", "nan"), "--lr"),
    (("minicnn.train", "--train-size", "10", "--batch", "64"), "smaller than one batch"),
    (("minicnn.train", "--workers", "0"), "--workers"),
    (("minicnn.predict", "IMG", "--top", "0"), "--top"),
    (("minicnn.saliency", "IMG", "--bogus"), "unrecognized"),
])
def test_bad_numbers_are_one_line_errors(tmp_path, args, fragment):
    from fixtures import EXAMPLES
    args = [EXAMPLES[0] if a == "IMG" else a for a in args]
    if args[0] == "minicnn.train":
        args += ["--out", str(tmp_path / "t.h5")]
    done = run(*args, cwd=tmp_path)
    assert_one_line_error(done, fragment)
    assert os.listdir(tmp_path) == []


def test_train_out_that_is_a_folder_fails_before_training(tmp_path):
    t = time.perf_counter()
    assert_one_line_error(run("minicnn.train", "--out", str(tmp_path)), "not a regular file")
    assert time.perf_counter() - t < 30


# ------------------------------------------------------------------------------------------------
# Downloads against servers on 127.0.0.1 that misbehave


class _Odd(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        path = self.path
        if path == "/garbage-status":
            self.wfile.write(b"NONSENSE\r\n\r\n")
        elif path == "/long-header":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        elif path == "/many-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n")
        elif path == "/bad-length":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n" + self.body)
            self.wfile.flush()
            self.connection.close()
        elif path == "/broken-chunks":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nZZZ\r\n")
        elif path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            for k in range(len(self.body)):
                self.wfile.write(self.body[k:k + 1])
                self.wfile.flush()
                time.sleep(0.3)
        elif path.endswith(".h5") or path.endswith(".pth"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def odd_server(tmp_path_factory):
    import hashlib
    tmp = tmp_path_factory.mktemp("srv")
    body = open(write_torch_legacy(small_net(), str(tmp / "w.pth")), "rb").read()
    _Odd.body = body

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
    httpd = Server(("127.0.0.1", 0), _Odd)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", body, hashlib.sha256(body).hexdigest(), \
        hashlib.md5(body).hexdigest()
    httpd.shutdown()


@pytest.mark.parametrize("path, fragment", [
    ("/garbage-status", "cannot download"), ("/long-header", "cannot download"),
    ("/many-headers", "cannot download"), ("/broken-chunks", ""), ("/loop", "cannot download"),
])
def test_http_oddities_are_one_line(odd_server, tmp_path, path, fragment):
    base, _, sha, _ = odd_server
    refused(lambda: download(base + path, str(tmp_path / "d"), sha256=sha, quiet=True, timeout=5), fragment)
    assert os.listdir(tmp_path) == []


def test_bad_content_length_falls_back_to_the_checksum(odd_server, tmp_path):
    base, body, sha, _ = odd_server
    download(base + "/bad-length", str(tmp_path / "d"), sha256=sha, quiet=True, timeout=5)
    assert (tmp_path / "d").read_bytes() == body


@pytest.mark.parametrize("url", ["", "ftp://127.0.0.1/x", "file:///etc/passwd", "http://", "http://a b/"])
def test_only_http_urls(tmp_path, url):
    refused(lambda: download(url, str(tmp_path / "d"), sha256="0" * 64, quiet=True), "http")


def test_trickling_server_hits_the_deadline(odd_server, tmp_path):
    base, _, sha, _ = odd_server
    t = time.perf_counter()
    refused(lambda: download(base + "/trickle", str(tmp_path / "d"), sha256=sha, quiet=True, timeout=5, deadline=1),
            "too slow")
    assert time.perf_counter() - t < 10 and os.listdir(tmp_path) == []


def test_md5_and_sha256_are_each_checked(odd_server, tmp_path):
    """Keras' files are verified by MD5: a digest wrong only in its last digit fails, for
    either hash, and when both are given both must match."""
    base, body, sha, md5 = odd_server
    url, dest = base + "/w.pth", str(tmp_path / "d")
    download(url, dest, md5=md5, quiet=True)
    os.remove(dest)
    last = {"0": "1"}.get(md5[-1], "0")
    refused(lambda: download(url, dest, md5=md5[:-1] + last, quiet=True), "checksum mismatch", "md5")
    last = {"0": "1"}.get(sha[-1], "0")
    refused(lambda: download(url, dest, sha256=sha[:-1] + last, quiet=True), "checksum mismatch")
    refused(lambda: download(url, dest, md5=md5, sha256=sha[:-1] + last, quiet=True), "sha256")
    assert os.listdir(tmp_path) == []


def test_url_named_like_the_cache_entry_and_concurrent_downloads(odd_server, tmp_path):
    """The raw download never takes the URL's file name (here the cache entry's own name), and
    two downloads at once both succeed, leaving one complete entry and no debris."""
    base, body, sha, _ = odd_server
    env = dict(os.environ, MINICNN_HOME=str(tmp_path / "home"))
    cmd = [sys.executable, "-m", "minicnn.weights", "download", "vgg19", "--source", "torchvision",
           "--url", f"{base}/vgg19-torchvision.h5", "--sha256", sha, "--quiet"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert os.listdir(tmp_path / "home") == ["vgg19-torchvision.h5"]
    load_network(str(tmp_path / "home" / "vgg19-torchvision.h5"))


# ------------------------------------------------------------------------------------------------
# Held-out hostile weight files: BUILD on a storage or tensor, a negative size, an overflow


def _torch_zip_with_edit(tmp_path, name, edit):
    """A valid torch zip of a small network whose data.pkl is rewritten by ``edit`` (bytes ->
    bytes), as an attacker with the pickle opcodes at hand would."""
    import pickletools
    import zipfile
    path = write_torch_zip(small_net(), str(tmp_path / "src.pth"))
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in members if n.endswith("data.pkl"))
    ops = list(pickletools.genops(members[pkl]))
    members[pkl] = edit(members[pkl], ops)
    out = str(tmp_path / name)
    with zipfile.ZipFile(out, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return out


def _after_first(opcode_name, insert):
    """Insert ``insert`` after the first ``opcode_name`` that follows the first storage (a
    REDUCE: the one of a rebuilt tensor, whose arguments are a tuple of several items)."""
    def edit(data, ops):
        first = next(p for op, _, p in ops if op.name == "BINPERSID")
        names = [op.name for op, _, _ in ops if "PUT" not in op.name]
        places = [p for op, _, p in ops if "PUT" not in op.name]
        pos = next(p for k, (name, p) in enumerate(zip(names, places)) if name == opcode_name and p >= first
                   and (opcode_name != "REDUCE" or names[k - 1] == "TUPLE"))
        end = pos + 1
        return data[:end] + insert + data[end:]
    return edit


def _short_str(s):
    return b"X" + len(s).to_bytes(4, "little") + s.encode()


@pytest.mark.parametrize("opcode, key, value", [
    ("BINPERSID", "dtype", b"X\x01\x00\x00\x00x"),        # a storage's dtype becomes 'x'
    ("REDUCE", "array", b"K\x01"),                        # a tensor's array() becomes the int 1
])
def test_pickle_that_builds_state_into_a_storage_or_tensor_is_refused(tmp_path, opcode, key, value):
    """BUILD after a storage (its persistent id) or a rebuilt tensor sets attributes of minicnn's
    own objects: once a traceback ('str' object has no attribute 'itemsize', 'int' object is not
    callable); now the unpickler refuses BUILD on them."""
    insert = b"}" + _short_str(key) + value + b"sb"           # EMPTY_DICT, key, value, SETITEM, BUILD
    path = _torch_zip_with_edit(tmp_path, "build.pth", _after_first(opcode, insert))
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "BUILD")
    assert not os.path.exists(tmp_path / "o.h5")
    done = run("minicnn.weights", "convert", path, "-o", str(tmp_path / "o.h5"))
    assert_one_line_error(done, "BUILD")


def test_tensor_with_a_negative_size_is_refused(tmp_path):
    path = write_torch_zip_views(str(tmp_path / "neg.pth"), {
        "features.0.weight": (np.ones(12, np.float32), (-3, 4), (4, 1))})
    refused(lambda: convert(path, str(tmp_path / "o.h5")), "negative size")


def test_finite_weights_that_overflow_give_one_line_not_nan_probabilities(tmp_path):
    """Every weight is finite (1e30), but the forward pass overflows float32: predict used to
    print 'nan%' as an answer."""
    net = small_net()
    for _, layer in net.params():
        layer.w[...] = 1e30
    path = saved(tmp_path, net, "huge.h5")
    image = str(tmp_path / "img.png")
    from PIL import Image
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(image)
    for command in (("minicnn.predict", image), ("minicnn.saliency", image, "--outdir", str(tmp_path / "o"))):
        done = run(*command, "--weights", path)
        assert_one_line_error(done, "output is not finite")
    assert not os.path.exists(tmp_path / "o")           # nothing written, not even the folder
