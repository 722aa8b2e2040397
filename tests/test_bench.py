"""python -m minicnn.bench --jobs: rows whose reference is missing are skipped with a reason,
and a job worker times its job and leaves its output for the comparison."""
import importlib.util
import json
import os

import numpy as np
import pytest

from fixtures import run


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="with torch this would run the benchmark")
def test_jobs_without_references_are_skipped_with_a_reason():
    done = run("minicnn.bench", "--jobs")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "skipped" in line]
    assert [r.split()[0] for r in rows] == ["training-step", "smoothgrad", "integrated", "vis-grid",
                                            "vis-grid-hed", "saliency-pass", "vis-step"]
    assert all("not installed" in r and "torch" in r for r in rows)


def test_the_hed_row_without_the_weights_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    """With the references there but not HED's weights, the vis-grid-hed row says so (the
    reference check is bypassed, so this runs whether or not torch is installed)."""
    from minicnn.bench import workloads
    monkeypatch.setenv("MINICNN_HOME", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    workloads.bench_jobs(only=["vis-grid-hed"])
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("vis-grid-hed")]
    assert row and "weights download vgg16-hed" in row[0]


def test_a_job_worker_times_its_job_and_keeps_its_output(tmp_path):
    out = tmp_path / "out.npz"
    done = run("minicnn.bench", "--job-worker", "training-step", "minicnn", "--repeat", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    times = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(times) >= 2 and all(t > 0 for t in times)
    loss = float(np.load(out)["output"])
    assert abs(loss - np.log(10)) < 1.0              # an untrained 10-class model: about log(10)
    assert os.listdir(tmp_path) == ["out.npz"]


def test_convs_times_every_3x3_shape_by_each_algorithm_and_names_the_rules_pick():
    """python -m minicnn.bench --convs, on a small VGG: one row per distinct 3x3 shape, every
    algorithm timed, and the pick of winograd.tile_size."""
    from minicnn.bench.convs import bench_convs
    from minicnn.vgg19 import make_vgg
    net = make_vgg(((64, 64, 64), (256, 256)), (), 10, (3, 12, 12), notop=True)
    rows = bench_convs(repeat=1, net=net)
    assert [(r["layer"], r["rule"]) for r in rows] == [("conv1_1", None), ("conv1_2", 4),   # conv1_3: as conv1_2
                                                       ("conv2_1", None), ("conv2_2", 2)]   # 6 px: not 4 | 6
    assert all(t > 0 for r in rows for name in ("im2col", "F(2x2)", "F(4x4)") for t in r[name])


@pytest.mark.parametrize("args", [["--jobs"], ["--convs"]])
def test_gpu_benchmarks_without_a_gpu_say_so_in_one_line(args):
    from minicnn.backend import cuda_available
    if cuda_available():
        pytest.skip("this machine has a GPU: the benchmark would run")
    done = run("minicnn.bench", *args, "--device", "cuda")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--device cuda needs cupy" in done.stderr


def test_a_timed_command_reports_its_own_peak_memory_and_its_failure():
    """--commands' harness: each child's own peak (a second, smaller child is not given the
    first one's), and a failing child is an error that carries its stderr."""
    import sys
    from minicnn.bench.commands import _timed
    big = "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum())"
    _, peak = _timed([sys.executable, "-c", big])
    _, small = _timed([sys.executable, "-c", "pass"])
    assert 300 <= peak < 600 and small < 100
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        _timed([sys.executable, "-c", "1 / 0"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="with torch this would run the benchmark")
def test_commands_without_the_references_say_so():
    done = run("minicnn.bench", "--commands")
    assert done.returncode == 0 and "not installed" in done.stdout, done.stderr
