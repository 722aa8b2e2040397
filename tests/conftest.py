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
