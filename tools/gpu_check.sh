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
# every VGG19 command of the tutorial, unchanged, on a converted file of random weights
# (the slow ones included; minutes on a 2-core CPU, less on this machine's cores)
MINICNN_SLOW_TESTS=1 timeout 400 python -m pytest -q tests/test_tutorial.py -k vgg19 > "$OUT/test_tutorial_vgg19.txt" 2>&1
echo "tutorial vgg19 rc=$?" >> "$OUT/gpu.txt"
tail -3 "$OUT/test_tutorial_vgg19.txt"
cat "$OUT/gpu.txt"
