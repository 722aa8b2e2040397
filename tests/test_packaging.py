"""The package as users get it: an sdist that holds what the tests need, a wheel built from that
sdist, and the installed wheel's console script and ``python -m minicnn`` working away from
the checkout, with the shipped model inside the package."""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from fixtures import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    source = ROOT
    files = _checkout_files()
    if files:                       # a copy of the checkout's files only, as a clean clone has them (no
        source = str(tmp_path_factory.mktemp("src"))   # build/ or egg-info/ leftovers to hide a gap)
        for f in files:
            os.makedirs(os.path.dirname(os.path.join(source, f)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, f), os.path.join(source, f))
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), source],   # sdist, then a wheel from it
                          capture_output=True, text=True, timeout=600)
    if done.returncode and "No matching distribution" in done.stdout + done.stderr:
        pytest.skip("building needs setuptools from the package registry, which is out of reach")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    files = os.listdir(out)
    sdist = next(os.path.join(out, f) for f in files if f.endswith(".tar.gz"))
    wheel = next(os.path.join(out, f) for f in files if f.endswith(".whl"))
    return sdist, wheel


def _checkout_files():
    """The checkout's files (tracked, or new and not ignored); [] outside a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return []
    return [f for f in listed.stdout.splitlines() if os.path.isfile(os.path.join(ROOT, f))] if listed.returncode == 0 else []


def test_sdist_holds_what_the_tests_need(dist):
    with tarfile.open(dist[0]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    needed = [f for f in _checkout_files() if f.split("/")[0] in ("tests", "examples", "docs", "tools", "kernels", "weights", "minicnn")
              or f in ("README.md", "tutorial.md", "LICENSE", "pyproject.toml")]
    if not needed:
        pytest.skip("not a git checkout")
    assert not [f for f in needed if f not in names]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_installed_wheel_runs_away_from_the_checkout(dist, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--target", str(site), dist[1]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    env = dict(os.environ, PYTHONPATH=str(site), MINICNN_HOME=str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()

    def run(*cmd):
        result = subprocess.run(list(cmd), capture_output=True, text=True, env=env, cwd=work)
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = run(sys.executable, "-c", "import minicnn; print(minicnn.__file__)")
    assert where.startswith(str(site))                                    # the wheel, not the checkout
    version = run(sys.executable, "-c", "import minicnn; print(minicnn.__version__)").strip()
    script = site / "bin" / "minicnn"
    assert run(sys.executable, str(script), "--version").strip() == f"minicnn {version}"
    assert "saliency" in run(sys.executable, "-m", "minicnn") and "visualize" in run(sys.executable, str(script))
    top = json.loads(run(sys.executable, "-m", "minicnn.predict", EXAMPLES[0], "--json"))[0]["top"]
    assert top[0]["name"] == os.path.splitext(os.path.basename(EXAMPLES[0]))[0]   # the shipped model, packaged
    assert os.listdir(work) == []
