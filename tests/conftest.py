import os
import sys

# tests/fixtures.py (the weight-file writers) is imported as a plain module by the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
