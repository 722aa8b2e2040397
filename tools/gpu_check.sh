#!/usr/bin/env bash
# The GPU check, in one go (run on a machine with an NVIDIA GPU, cupy and, for the expert row,
# torch): the CUDA tests, then the CUDA benchmark. Results go to $OUT (default ./gpu-results).
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=.
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__)" >> "$OUT/gpu.txt" 2>&1
timeout 200 python -m pytest -q -x tests/test_cuda.py > "$OUT/test_cuda.txt" 2>&1
echo "test_cuda rc=$?" >> "$OUT/gpu.txt"
tail -3 "$OUT/test_cuda.txt"
timeout 240 python -m minicnn.bench --device cuda --methods --json-out "$OUT/bench_cuda.json" > "$OUT/bench_cuda.txt" 2>&1
echo "bench rc=$?" >> "$OUT/gpu.txt"
cat "$OUT/bench_cuda.txt" | tail -40
cat "$OUT/gpu.txt"
