"""The atlas on a Dask cluster (a LocalCluster of two worker processes on 127.0.0.1) and on two
local processes: the same files as in this process, even with a worker killed mid-run."""
import os
import signal

import pytest

from conftest import ATLAS_SMALL
from test_atlas import digests, site_problems
from minicnn.atlas import build
from minicnn.weights import load_model

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (pip install 'minicnn[cluster]')")


CLUSTER = ATLAS_SMALL       # four render tasks of four channels per layer, and the analysis


@pytest.fixture
def reference(small_atlas):
    return small_atlas


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c, distributed.Client(c) as client:
        yield client


def test_a_cluster_builds_the_same_atlas(cluster, reference, tmp_path):
    out = tmp_path / "site"
    build(load_model("world", quiet=True), outdir=out, model_name="world", client=cluster, **CLUSTER)
    assert digests(out) == digests(reference)
    assert site_problems(out) == []


def test_a_killed_worker_loses_nothing(cluster, reference, tmp_path):
    """After the first result, the worker busy with the most tasks is killed (SIGKILL): its
    tasks run again elsewhere (the nanny starts a new worker), and the atlas completes, the
    same file for file, with nothing half-written."""
    pids = cluster.run(os.getpid)
    killed = []

    def kill_one(task):
        if killed:
            return
        busy = cluster.processing()
        address = max(busy, key=lambda a: len(busy[a]))
        os.kill(pids[address], signal.SIGKILL)
        killed.append((address, len(busy[address])))
    out = tmp_path / "site"
    build(load_model("world", quiet=True), outdir=out, model_name="world", client=cluster, on_result=kill_one,
          **CLUSTER)
    assert killed and killed[0][1] > 0, killed                  # it was working when it was killed
    assert digests(out) == digests(reference)
    assert site_problems(out) == []


def test_two_local_processes_build_the_same_atlas(reference, tmp_path):
    out = tmp_path / "site"
    build(load_model("world", quiet=True), outdir=out, model_name="world", workers=2, **CLUSTER)
    assert digests(out) == digests(reference)


def test_local_processes_from_a_script_without_a_main_guard(tmp_path):
    """build(workers=2) called at the top of a script read from stdin (no file, no
    ``if __name__ == "__main__":``): the workers must not run the script again (spawned ones
    would, and the pool would wait for them forever); it finishes."""
    import subprocess
    import sys
    script = ("from minicnn.weights import load_model\nfrom minicnn.atlas import build\n"
              f"print(build(load_model('world', quiet=True), layers=['conv1_1'], outdir={str(tmp_path / 's')!r}, "
              "steps=2, diversity=0, held_out=20, workers=2))\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(tmp_path / "s" / "index.html")
