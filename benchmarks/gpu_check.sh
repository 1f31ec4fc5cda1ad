#!/usr/bin/env bash
# The GPU check (performance issue): on a machine with a CUDA GPU, in under 8 minutes,
#   1. the CUDA tests; 2. the activation micro-benchmark on CUDA (relustudy bench --device cuda);
#   3. training throughput of nin (full width) and smith_vgg3, fp32 / bf16 autocast, channels_last,
#      eager / torch.compile; 4. a CUDA smoke run against the CPU one (same configs).
# Records go under results/ (microbench/quick/cuda, gpu_check/) so they can be committed.
# Usage: benchmarks/gpu_check.sh   (from the project root, after `make venv`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export RELUSTUDY_DATA="${RELUSTUDY_DATA:-$(realpath ../shared/data 2>/dev/null || echo)}"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device here')"
mkdir -p results/gpu_check
echo "== 1. CUDA tests"
"$PY" -m pytest -q tests/test_microbench.py tests/test_kernels.py -k "cuda or bf16" -p no:cacheprovider
echo "== 2. micro-benchmark on CUDA"
.venv/bin/relustudy bench --profile quick --device cuda --force
echo "== 2b. whole-step benchmark on CUDA (every study model: FLOP/img, images/s, share of the GPU's sgemm, compiled, bf16)"
timeout 420 .venv/bin/relustudy bench train --profile quick --device cuda --force || echo "whole-step benchmark: not completed"
echo "== 3. training throughput"
timeout 300 "$PY" benchmarks/bench_gpu_train.py --device cuda --steps 30 --out results/gpu_check/train_throughput.json
echo "== 4. CUDA smoke run against the CPU one"
rm -rf _build/gpu_check && mkdir -p _build/gpu_check
.venv/bin/relustudy run smith_fmnist_cnn --profile smoke --device cpu --results-dir _build/gpu_check/cpu
.venv/bin/relustudy run smith_fmnist_cnn --profile smoke --device cuda --results-dir _build/gpu_check/cuda
"$PY" benchmarks/compare_devices.py _build/gpu_check/cpu _build/gpu_check/cuda --tolerance 0.02 \
    --out results/gpu_check/cuda_vs_cpu_smoke.json
