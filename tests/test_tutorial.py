"""tutorial.md cannot rot: every code block in it is run or checked here.

* ```python blocks run in order, in one namespace, from the repository root (each ends with
  an assert about what it printed); a block after ``<!-- excerpt: PATH -->`` is a quotation,
  and each of its lines must appear in PATH.
* ```bash blocks: each command runs in a fresh folder that holds the examples; a command that
  needs VGG19 (its weights cannot be downloaded by the tests) runs with ``--help`` instead, so
  at least the module and its options exist.
* ```text blocks are formulas and printed output: nothing to run.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TUTORIAL = os.path.join(ROOT, "tutorial.md")
FENCE = re.compile(r"(?:<!-- excerpt: (?P<source>\S+) -->\n)?```(?P<lang>\w*)\n(?P<body>.*?)\n```", re.S)


def blocks(lang):
    with open(TUTORIAL) as f:
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


COMMANDS = [line.split("#")[0].strip() for _, body in blocks("bash") for line in body.splitlines()
            if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("command", COMMANDS)
def test_shell_commands_run(command, tmp_path):
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    args = shlex.split(command)
    assert args[:2] == ["python", "-m"], command
    if "vgg19" in args:
        args = args[:3] + ["--help"]
    env = dict(os.environ, PYTHONPATH=ROOT, MINICNN_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, *args[1:]], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, (command, done.stderr[-2000:])


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
