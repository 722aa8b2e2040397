"""tutorial.md cannot rot: every code block in it is run or checked here.

* ```python blocks run in order, in one namespace, from the repository root (each ends with
  an assert about what it printed); a block after ``<!-- excerpt: PATH -->`` is a quotation,
  and each of its lines must appear in PATH.
* ```bash blocks: each command runs in a fresh folder that holds the examples.
* Every VGG19 command (bash blocks and `inline` ones, tutorial and README) runs unchanged
  against a converted VGG19 file of random weights: the tests cannot download the real one, so
  a Keras-layout file of VGG19's exact shape is served on 127.0.0.1 and fetched with
  ``python -m minicnn.weights download vgg19 --url ... --md5 ...`` into a temporary
  ``$MINICNN_HOME`` (the same download -> check -> convert path as the real file). The quick
  ones run always; the ones that take minutes on a CPU (``--method all``, ``visualize``,
  ``curves``: VGG19_SLOW) run when ``MINICNN_SLOW_TESTS=1``.
* Every command on HED's VGG16 trunk (``--model vgg16-hed``) runs unchanged against a
  MINICNN_HOME holding the trunk with random weights (the real ones come through pip, which the
  quick suite does not use); the slow ones with ``MINICNN_SLOW_TESTS=1``, as for VGG19.
* ```text blocks are formulas and printed output: nothing to run.
"""
import hashlib
import http.server
import os
import re
import shlex
import subprocess
import sys
import threading

import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIAL = os.path.join(ROOT, "tutorial.md")
README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"(?:<!-- excerpt: (?P<source>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)\n```", re.S)


def blocks(lang, path=TUTORIAL):
    with open(path) as f:
        text = f.read()
    return [(m.group("source"), m.group("body")) for m in FENCE.finditer(text) if m.group("lang") == lang]


def test_every_block_has_a_language():
    with open(TUTORIAL) as f:
        langs = [m.group("lang") for m in FENCE.finditer(f.read())]
    assert langs and all(lang in ("python", "bash", "text") for lang in langs), langs


def test_python_snippets_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(ROOT)
    namespace = {}
    runnable = [body for source, body in blocks("python") if source is None]
    assert len(runnable) >= 4
    for k, body in enumerate(runnable):
        exec(compile(body, f"tutorial.md python block {k + 1}", "exec"), namespace)


def test_readme_python_runs(monkeypatch):
    """The README's "From Python" block runs as written, from the repository root."""
    monkeypatch.chdir(ROOT)
    with open(os.path.join(ROOT, "README.md")) as f:
        bodies = [m.group("body") for m in FENCE.finditer(f.read()) if m.group("lang") == "python"]
    assert bodies
    for k, body in enumerate(bodies):
        exec(compile(body, f"README.md python block {k + 1}", "exec"), {})


def _code(line):
    return " ".join(line.split("#")[0].split())


def test_excerpts_match_their_source():
    excerpts = [(source, body) for source, body in blocks("python") if source is not None]
    assert excerpts
    for source, body in excerpts:
        with open(os.path.join(ROOT, source)) as f:
            lines = {_code(line) for line in f}
        for line in body.splitlines():
            assert not _code(line) or _code(line) in lines, f"{source} has no line {line.strip()!r}"


def _commands(path):
    return [line.split("#")[0].strip() for _, body in blocks("bash", path) for line in body.splitlines()
            if line.strip() and not line.startswith("#")]


def _inline_commands(path):
    """Every `python ...` in running text (outside code blocks), a line break inside the
    backticks read as a space: a command split over two lines is still one command."""
    with open(path) as f:
        text = FENCE.sub("", f.read())
    return [" ".join(c.split()) for c in re.findall(r"`(python\s[^`]*)`", text)]


def _inline_vgg19_commands(path):
    """`python -m minicnn... vgg19` in running text; CHANNEL (a placeholder) becomes 0."""
    return [c.replace("CHANNEL", "0") for c in _inline_commands(path)
            if c.startswith("python -m minicnn") and "vgg19" in c.split()]


def test_every_command_in_the_text_names_a_module_or_script_that_exists():
    """`python -m X ...` needs a module X, `python tools/x.py ...` the file: a command the
    reader copies from the prose must at least start."""
    import importlib.util
    commands = _inline_commands(TUTORIAL) + _inline_commands(README)
    assert len(commands) > 20
    for command in commands:
        words = command.split()
        if any(w.isupper() for w in re.split(r"[./]", words[2] if words[1] == "-m" else words[1])):
            continue                                    # a placeholder: python -m minicnn.COMMAND
        if words[1] == "-m":
            assert importlib.util.find_spec(words[2]) is not None, f"no module {words[2]} ({command!r})"
        elif words[1].endswith(".py"):
            assert os.path.isfile(os.path.join(ROOT, words[1])), f"no file {words[1]} ({command!r})"


COMMANDS = _commands(TUTORIAL)
VGG19_COMMANDS = sorted({c for path in (TUTORIAL, README) for c in _commands(path) + _inline_vgg19_commands(path)
                         if "vgg19" in shlex.split(c)})
HED_COMMANDS = sorted({c for path in (TUTORIAL, README) for c in _commands(path) if "vgg16-hed" in shlex.split(c)})
VGG19_SLOW = ("--method all", "minicnn.visualize", "minicnn.curves")   # minutes each on a 2-core CPU
HED_SLOW = VGG19_SLOW + ("minicnn.hierarchy", "--method smoothgrad", "--method integrated", "--method occlusion")
SLOW = os.environ.get("MINICNN_SLOW_TESTS") == "1"
# a download that no cache entry answers needs the real file: its size and checksum are fixed
# (the download itself is tested against a local server in test_convert.py)
NEEDS_THE_NETWORK = ("download vgg19 --source torchvision",)


def _run(args, cwd, home):
    assert args[:2] == ["python", "-m"], args
    env = dict(os.environ, PYTHONPATH=ROOT, MINICNN_HOME=str(home))
    return subprocess.run([sys.executable, *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=3600)


@pytest.mark.parametrize("command", [c for c in COMMANDS if "vgg19" not in shlex.split(c) and c not in HED_COMMANDS])
def test_shell_commands_run(command, tmp_path):
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    done = _run(shlex.split(command), tmp_path, tmp_path / "cache")
    assert done.returncode == 0, (command, done.stderr[-2000:])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def vgg19_home(tmp_path_factory):
    """A MINICNN_HOME holding VGG19 (random weights, seed 1) as `weights download` leaves it."""
    from fixtures import write_keras
    from minicnn.vgg19 import vgg19
    served = tmp_path_factory.mktemp("served")
    write_keras(vgg19(seed=1), str(served / "vgg19.h5"))
    md5 = hashlib.md5()
    with open(served / "vgg19.h5", "rb") as f:
        while chunk := f.read(1 << 24):
            md5.update(chunk)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    home = tmp_path_factory.mktemp("home")
    try:
        done = _run(["python", "-m", "minicnn.weights", "download", "vgg19", "--quiet", "--md5", md5.hexdigest(),
                     "--url", f"http://127.0.0.1:{httpd.server_address[1]}/vgg19.h5"], served, home)
    finally:
        httpd.shutdown()
        os.remove(served / "vgg19.h5")
    assert done.returncode == 0, done.stderr
    assert os.listdir(home) == ["vgg19-keras.h5"]
    yield home
    os.remove(home / "vgg19-keras.h5")   # 575 MB: not left in pytest's kept temporary folders


def test_every_vgg19_command_is_found():
    assert len(VGG19_COMMANDS) >= 10
    assert any("download vgg19" in c for c in VGG19_COMMANDS) and any("--neuron" in c for c in VGG19_COMMANDS)


@pytest.mark.parametrize("command", VGG19_COMMANDS)
def test_vgg19_commands_run_unchanged_on_a_converted_file(command, vgg19_home, tmp_path):
    """photo.jpg (the reader's own photo) is an example image saved as a JPEG."""
    if any(s in command for s in NEEDS_THE_NETWORK):
        pytest.skip("needs the real file from the network")
    if not SLOW and any(s in command for s in VGG19_SLOW):
        pytest.skip("minutes on a CPU: MINICNN_SLOW_TESTS=1 runs it")
    Image.open(os.path.join(ROOT, "examples", "butterfly.png")).convert("RGB").save(tmp_path / "photo.jpg")
    done = _run(shlex.split(command), tmp_path, vgg19_home)
    assert done.returncode == 0, (command, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(vgg19_home)) == ["vgg19-keras.h5"]   # nothing downloaded or written there


@pytest.fixture(scope="module")
def hed_home(tmp_path_factory):
    """A MINICNN_HOME holding HED's trunk (its architecture and preprocessing, random weights)
    where ``weights download vgg16-hed`` puts the real one."""
    from minicnn.vgg19 import hed_trunk
    from minicnn.weights import hed, save_network
    home = tmp_path_factory.mktemp("hed-home")
    save_network(hed_trunk(seed=1), str(home / hed.CACHED), "random weights of HED's trunk (tests)",
                 hed.PREPROCESSING)
    return home


def test_every_hed_command_is_found():
    assert any("minicnn.curves" in c for c in HED_COMMANDS) and any("--unit" in c for c in HED_COMMANDS)


@pytest.mark.parametrize("command", HED_COMMANDS)
def test_hed_commands_run_unchanged(command, hed_home, tmp_path):
    if not SLOW and any(s in command for s in HED_SLOW):
        pytest.skip("minutes on a CPU: MINICNN_SLOW_TESTS=1 runs it")
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    Image.open(os.path.join(ROOT, "examples", "photos", "coffee.jpg")).save(tmp_path / "photo.jpg")
    done = _run(shlex.split(command), tmp_path, hed_home)
    assert done.returncode == 0, (command, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert os.listdir(hed_home) == ["vgg16-hed.h5"]              # nothing fetched or written there


def test_figures_skip_vgg19_honestly_without_its_weights(tmp_path):
    """No VGG19 weights: the VGG19 figures are skipped with a note, nothing is written."""
    before = sorted(os.listdir(os.path.join(ROOT, "docs", "figures")))
    env = dict(os.environ, PYTHONPATH=ROOT, MINICNN_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "figures.py"), "--only", "vgg19_layer14", "vgg19_curves"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("skipped vgg19_") == 2 and "download vgg19" in done.stdout
    assert sorted(os.listdir(os.path.join(ROOT, "docs", "figures"))) == before


def _slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_resolve_to_files_functions_and_headings():
    """Every relative link names an existing file; every `[`file.py`](file.py), `name`` names
    something defined in that file; every #anchor names a heading of the tutorial."""
    with open(TUTORIAL) as f:
        text = f.read()
    anchors = {_slug(h) for h in re.findall(r"(?m)^#+ (.+)$", text)}
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert len(links) > 30
    for target in links:
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if not path:
            assert anchor in anchors, f"no heading for #{anchor}"
        else:
            assert os.path.exists(os.path.join(ROOT, path)), f"{path} does not exist"
    named = re.findall(r"\[`([^`]+\.py)`\]\(([^)]+\.py)\),? `(\w+)`", text)
    assert len(named) >= 3
    for _, path, name in named:
        with open(os.path.join(ROOT, path)) as f:
            source = f.read()
        assert re.search(rf"(?m)^\s*(def|class) {name}\b|^{name} = ", source), f"{path} defines no {name}"
