"""The atlas (python -m minicnn.atlas): a whole site, its numbers, its circuits, resuming, and
bad input. The cluster runs are in test_atlas_cluster.py, the browser in test_atlas_browser.py."""
import hashlib
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from conftest import ATLAS_SMALL as SMALL
from fixtures import assert_one_line_error, hostile_images, refused, run
from minicnn.atlas import build
from minicnn.errors import MinicnnError
from minicnn.weights import load_model

@pytest.fixture(scope="module")
def world():
    return load_model("world", quiet=True)


@pytest.fixture
def atlas(small_atlas):
    return small_atlas


class Refs(HTMLParser):
    """Every src and href of a page."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        self.refs += [value for name, value in attrs if name in ("src", "href")]


def site_problems(root):
    """A pure-Python check of a site: every page's links and images name a file inside the
    site, nothing is fetched from the network, no temporary file is left."""
    problems, root = [], os.path.abspath(root)
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".part") or name.startswith("."):
                problems.append(f"left behind: {path}")
            if not name.endswith(".html"):
                continue
            parser = Refs()
            with open(path, encoding="utf-8") as f:
                parser.feed(f.read())
            for ref in parser.refs:
                target = os.path.normpath(os.path.join(folder, ref))
                if re.match(r"^[a-z]+:", ref) or "//" in ref:
                    problems.append(f"{path}: fetches {ref}")
                elif not target.startswith(root + os.sep) or not os.path.isfile(target):
                    problems.append(f"{path}: {ref} is not a file of the site")
    return problems


def digests(root):
    """SHA-256 of every file of a site but its pages (which name the run's own settings)."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".html"):
                with open(os.path.join(folder, name), "rb") as f:
                    out[os.path.relpath(os.path.join(folder, name), root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_the_site_is_whole(atlas, world):
    """Every unit of both layers has its page, render, diversity strip and dataset examples;
    the first layer its filters; every link and image of every page resolves inside the site."""
    assert site_problems(atlas) == []
    manifest = json.loads((atlas / "atlas.json").read_text())
    for layer in SMALL["layers"]:
        assert sorted(map(int, manifest["units"][layer])) == list(range(16))
        for c in range(16):
            for suffix in (".html", ".png", "_diversity.png", "_examples.jpg"):
                assert (atlas / layer / f"{c}{suffix}").is_file()
    assert (atlas / "conv1_1" / "0_filter.png").is_file() and not (atlas / "conv1_2" / "0_filter.png").exists()
    with Image.open(atlas / "conv1_2" / "3_diversity.png") as im:
        assert im.size == (2 * 64 + 2, 64)                          # two renders of 64 px, side by side


def test_the_numbers_are_the_hierarchy_commands(atlas, world):
    """The labels the atlas shows for a layer are the ones the hierarchy measures on the same
    held-out images with other layers beside it (the atlas measures only the layers it draws:
    the random nulls and probes of one layer must not depend on which others are measured)."""
    from minicnn.hierarchy import held_out, measure
    images, labels, _, jumbled = held_out(__import__("minicnn.models").models.MODELS["world"], 40, 0)
    full = measure(world, images, labels, None, 0, jumbled=jumbled, layers=["conv1_2", "conv2_1", "conv2_2"])
    analysis = json.loads((atlas / "conv1_2" / "analysis.json").read_text())
    assert [u["label"] for u in analysis["units"]] == [u["label"] for u in full["layers"]["relu1_2"]]
    page = (atlas / "conv1_2" / "5.html").read_text()
    assert f"label (hierarchy rule)</th><td>{full['layers']['relu1_2'][5]['label']}" in page


def test_a_render_drives_its_own_channel(atlas, world):
    """The PNG written for unit c, read back, drives channel c harder than the other units'
    renders do (and the manifest's number is its activation): each render is its own channel's."""
    from minicnn.visualize import channel_activations
    manifest = json.loads((atlas / "atlas.json").read_text())
    pngs = np.stack([np.asarray(Image.open(atlas / "conv1_2" / f"{c}.png"), np.float32).transpose(2, 0, 1) / 255
                     for c in range(16)])
    acts = channel_activations(world, "conv1_2", pngs)
    own = acts[np.arange(16), np.arange(16)]
    assert np.allclose(own, [manifest["units"]["conv1_2"][str(c)]["activation"] for c in range(16)], atol=0.02)
    assert (acts.argmax(axis=0) == np.arange(16)).mean() >= 0.75


def test_dataset_examples_are_the_top_images(atlas, world):
    """Unit c's examples are the held-out images where its firing peaks highest, best first."""
    from minicnn.hierarchy import held_out
    from minicnn.hierarchy.probes import peaks
    images = held_out(__import__("minicnn.models").models.MODELS["world"], 40, 0)[0]
    peak = peaks(world, images)[0]["relu1_2"]
    analysis = json.loads((atlas / "conv1_2" / "analysis.json").read_text())
    for c in (0, 7):
        assert [n for n, _, _, _ in analysis["examples"][c]] == list(np.argsort(-peak[:, c])[:3])
        assert np.allclose([v for *_, v in analysis["examples"][c]], np.sort(peak[:, c])[::-1][:3], rtol=1e-5)


def test_a_circuit_lists_the_strongest_weights(world, tmp_path):
    """Plant two connections into conv1_2:0, from conv1_1:5 (+) and conv1_1:9 (-), far
    stronger than the rest: the unit's circuit shows them first, linking to their pages."""
    import copy
    net = copy.deepcopy(world).unfreeze()
    w = net.layer("conv1_2").w
    w[0] *= 0.01
    w[0, 5] = 1.0
    w[0, 9] = -1.0
    build(net, outdir=tmp_path / "a", **{**SMALL, "steps": 1, "diversity": 0})
    page = (tmp_path / "a" / "conv1_2" / "0.html").read_text()
    positive, negative = page.split("<h3>strongest positive</h3>")[1].split("<h3>strongest negative</h3>")
    assert positive.index('href="../conv1_1/5.html"') < min(positive.index(f'href="../conv1_1/{j}.html"')
                                                           for j in range(16) if j != 5 and f'conv1_1/{j}.html"' in positive)
    assert re.search(r'href="\.\./conv1_1/(\d+)\.html"', negative).group(1) == "9"


def test_an_interrupted_build_resumed_equals_an_uninterrupted_one(atlas, world, tmp_path):
    """Stopped after two tasks (as Ctrl-C stops it), the folder is a site that opens, with
    the missing units marked; the same call again renders only the rest, and the result is
    the uninterrupted atlas, file for file."""
    out, done = tmp_path / "site", []

    def stop(task):
        done.append(task)
        if len(done) == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        build(world, outdir=out, model_name="world", on_result=stop, **SMALL)
    assert site_problems(out) == []
    manifest = json.loads((out / "atlas.json").read_text())
    rendered = sum(len(units) for units in manifest["units"].values())
    assert 0 < rendered < 32
    assert "not rendered" in (out / "conv1_2.html").read_text() or "not rendered" in (out / "conv1_1.html").read_text()
    again = []
    build(world, outdir=out, model_name="world", on_result=again.append, **SMALL)
    assert sum(len(t.get("channels", [])) for t in again) == 32 - rendered
    assert digests(out) == digests(atlas)
    assert site_problems(out) == []
    build(world, outdir=out, model_name="world", on_result=again.append, **SMALL)   # nothing left to do
    assert sum(len(t.get("channels", [])) for t in again) == 32 - rendered


def test_a_lost_file_is_rendered_again(atlas, world, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(atlas, out)
    (out / "conv1_1" / "3.png").unlink()
    tasks = []
    build(world, outdir=out, model_name="world", on_result=tasks.append, **SMALL)
    assert [t["channels"] for t in tasks] == [[0, 1, 2, 3]]       # its batch, rendered whole again
    assert digests(out) == digests(atlas)


def test_other_settings_or_another_model_are_stated_and_refused(atlas, world, tmp_path):
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(atlas, out)
    refused(lambda: build(world, outdir=out, **{**SMALL, "steps": 7}), "steps was 12, now 7", "--force")
    shapes = load_model("shapes", quiet=True)
    refused(lambda: build(shapes, outdir=out, **{**SMALL, "layers": ["conv1_1"]}), "another model", "--force")
    build(world, outdir=out, force=True, **{**SMALL, "layers": ["conv1_1"], "steps": 2, "diversity": 0})
    manifest = json.loads((out / "atlas.json").read_text())
    assert manifest["settings"]["steps"] == 2 and manifest["layers"] == ["conv1_1"]
    assert not (out / "conv1_2").exists() and site_problems(out) == []


def test_bad_input_is_one_line_before_any_work(tmp_path):
    """Unknown and non-conv layers, a folder that holds something else, an images folder of
    hostile files, an unreachable scheduler: one line, exit 2, nothing written."""
    out = tmp_path / "out"
    assert_one_line_error(run("minicnn.atlas", "--layers", "conv9_9", "--outdir", str(out)), "unknown layer 'conv9_9'")
    assert_one_line_error(run("minicnn.atlas", "--layers", "pool1", "--outdir", str(out)), "draws conv layers")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    assert_one_line_error(run("minicnn.atlas", "--layers", "conv1_1", "--outdir", str(tmp_path / "home")),
                          "not empty and holds no atlas")
    (tmp_path / "imgs").mkdir()
    files = hostile_images(tmp_path / "imgs")
    done = run("minicnn.atlas", "--layers", "conv1_1", "--outdir", str(out), "--images", str(tmp_path / "imgs"))
    assert_one_line_error(done)
    assert any(name in done.stderr and why in done.stderr for name, why in files.items()), done.stderr
    assert not out.exists()
    assert (tmp_path / "home").exists() and os.listdir(tmp_path / "home") == ["thesis.tex"]


def test_an_images_folder_is_read_as_a_stranger_s(tmp_path, world):
    """Only its image files are read: not links (which may point anywhere), not subfolders,
    not a pipe named like an image; an empty folder is refused."""
    from minicnn.atlas.examples import read_folder
    folder = tmp_path / "imgs"
    folder.mkdir()
    refused(lambda: read_folder(str(folder), 64), "no image files")
    from fixtures import pattern
    Image.fromarray(pattern(64, 64)).save(folder / "a.png")
    Image.fromarray(pattern(80, 70)).save(tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "sub.png").mkdir()
    (folder / "notes.txt").write_text("not read")
    images, names, _ = read_folder(str(folder), 64)
    assert names == ["a.png"] and images.shape == (1, 64, 64, 3)
    files = hostile_images(folder)                                 # a package's photos: bad ones left out
    refused(lambda: read_folder(str(folder), 64), "bomb.png", files["bomb.png"])     # the first, by name
    images, names, _ = read_folder(str(folder), 64, skip_bad=True)
    assert names == ["a.png", "good.jpg", "good.png"]


def test_an_unreachable_scheduler_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    import minicnn.atlas.__main__ as command
    monkeypatch.setattr(command, "CONNECT_TIMEOUT", 1)
    with pytest.raises(SystemExit) as info:
        command.main(["--scheduler", "tcp://127.0.0.1:9", "--outdir", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("error: --scheduler tcp://127.0.0.1:9: cannot reach") \
        and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    for address in ("http://example.com", "tcp://[::", "tcp://localhost:notaport", "tcp://localhost", "tcp://a:1/x"):
        refused(lambda: command.connect(address), "give an address such as tcp://")     # before any connection


def test_the_command_prints_its_index(tmp_path):
    out = tmp_path / "site"
    done = run("minicnn.atlas", "--layers", "conv1_1", "--outdir", str(out), "--steps", "2", "--diversity", "0",
               "--held-out", "20", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "index.html") and done.stderr == ""
    assert site_problems(out) == []


def test_bad_numbers_from_python(world, tmp_path):
    for option in ({"steps": 0}, {"batch": 10**9}, {"diversity": 1}, {"size": 5}):
        with pytest.raises(MinicnnError):
            build(world, outdir=tmp_path / "x", **{**SMALL, **option})
    assert not (tmp_path / "x").exists()


def test_a_model_without_a_world_takes_its_examples_from_a_package_s_photos(tmp_path, monkeypatch):
    """A network with no world of its own (as VGG16's trunk): labels from the probes alone, and
    dataset examples from a package's sample photos (scikit-image's when installed), the bad
    ones left out, the source named on the pages."""
    from fixtures import pattern
    from minicnn.atlas import examples
    from minicnn.vgg19 import make_vgg
    net = make_vgg(((4, 4),), (8,), 3, (3, 32, 32), seed=3)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(4):
        Image.fromarray(np.roll(pattern(48, 40), 7 * k, axis=1)).save(photos / f"p{k}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    monkeypatch.setattr(examples, "sample_photos", lambda: str(photos))
    build(net, layers=["conv1_2"], outdir=tmp_path / "a", steps=2, diversity=0, top=2)
    manifest = json.loads((tmp_path / "a" / "atlas.json").read_text())
    assert manifest["examples"]["names"] == ["p0.png", "p1.png", "p2.png", "p3.png"]
    assert manifest["settings"]["held_out"] is None
    analysis = json.loads((tmp_path / "a" / "conv1_2" / "analysis.json").read_text())
    assert {u["label"] for u in analysis["units"]} <= {"edge/colour", "curve", "texture", "unlabelled", "dead"}
    assert "scikit-image" in (tmp_path / "a" / "conv1_2" / "0.html").read_text()
    assert "class selectivity" not in (tmp_path / "a" / "conv1_2" / "0.html").read_text()
    assert site_problems(tmp_path / "a") == []
    monkeypatch.setattr(examples, "sample_photos", lambda: None)
    build(net, layers=["conv1_2"], outdir=tmp_path / "b", steps=2, diversity=0, top=2)
    assert "give photos with --images DIR" in (tmp_path / "b" / "conv1_2" / "0.html").read_text()


def test_a_full_disk_midway_leaves_a_site_that_opens(atlas, world, tmp_path, monkeypatch):
    """The disk fills after a few files: the error is minicnn's one line, the site written so
    far opens with nothing broken, and once there is room the same call finishes it, the same
    atlas as one run without the trouble."""
    import importlib
    from minicnn.files import OutputError
    build_module = importlib.import_module("minicnn.atlas.build")     # the module (minicnn.atlas.build is the function)
    real, calls = build_module.save_png, []

    def filling(path, rgb):
        calls.append(path)
        if len(calls) > 24:                       # 16 filters, then a batch of renders: in the next one
            raise OutputError(f"cannot write {path}: No space left on device")
        real(path, rgb)
    monkeypatch.setattr(build_module, "save_png", filling)
    out = tmp_path / "site"
    refused(lambda: build(world, outdir=out, model_name="world", **SMALL), "No space left on device")
    assert site_problems(out) == []
    done = json.loads((out / "atlas.json").read_text())["units"]
    assert sum(map(len, done.values())) == 4                  # the first batch; the second was stopped
    monkeypatch.setattr(build_module, "save_png", real)
    build(world, outdir=out, model_name="world", **SMALL)
    assert digests(out) == digests(atlas)


def test_a_damaged_atlas_is_redone_or_refused_in_one_line(atlas, world, tmp_path):
    """A layer's analysis.json cut short, or of the wrong shape, is the atlas's own derived
    file: it is analysed again (and the atlas ends as it was). A damaged manifest is the
    record of what is done: refused with one line, --force to rebuild."""
    import shutil
    out = tmp_path / "copy"
    shutil.copytree(atlas, out)
    text = (out / "conv1_2" / "analysis.json").read_text()
    (out / "conv1_2" / "analysis.json").write_text(text[: len(text) // 2])
    broken = json.loads((out / "conv1_1" / "analysis.json").read_text())
    del broken["units"][3]["curves"]["score"]
    (out / "conv1_1" / "analysis.json").write_text(json.dumps(broken))
    tasks = []
    build(world, outdir=out, model_name="world", on_result=tasks.append, **SMALL)
    assert [t["kind"] for t in tasks] == ["analyze"] and tasks[0]["layers"] == ["conv1_1", "conv1_2"]
    assert digests(out) == digests(atlas)
    manifest = json.loads((out / "atlas.json").read_text())
    manifest["units"]["conv1_1"]["0"] = "x"
    (out / "atlas.json").write_text(json.dumps(manifest))
    done = run("minicnn.atlas", "--layers", "conv1_1,conv1_2", "--outdir", str(out), "--steps", "12", "--batch", "4",
               "--diversity", "2", "--held-out", "40", "--top", "3")
    assert_one_line_error(done, "atlas.json there is damaged", "--force")
