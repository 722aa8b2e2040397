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
                                            "saliency-pass", "vis-step"]
    assert all("not installed" in r and "torch" in r for r in rows)


def test_a_job_worker_times_its_job_and_keeps_its_output(tmp_path):
    out = tmp_path / "out.npz"
    done = run("minicnn.bench", "--job-worker", "training-step", "minicnn", "--repeat", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    times = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(times) >= 2 and all(t > 0 for t in times)
    loss = float(np.load(out)["output"])
    assert abs(loss - np.log(10)) < 1.0              # an untrained 10-class model: about log(10)
    assert os.listdir(tmp_path) == ["out.npz"]
