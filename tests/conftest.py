import os
import sys

# tests/fixtures.py (the weight-file writers) is imported as a plain module by the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A random generator seeded from the test's own name: each test's data is the same
    whichever tests ran before it, and differs from its neighbours'."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


# The atlas's tests share one small atlas (test_atlas*.py): the world model's first two conv
# layers, few steps; built once per session.
ATLAS_SMALL = dict(layers=["conv1_1", "conv1_2"], steps=12, batch=4, diversity=2, held_out=40, top=3)


@pytest.fixture(scope="session")
def small_atlas(tmp_path_factory):
    from minicnn.atlas import build
    from minicnn.weights import load_model
    out = tmp_path_factory.mktemp("atlas") / "site"
    build(load_model("world", quiet=True), outdir=out, model_name="world", **ATLAS_SMALL)
    return out
