#!/usr/bin/env bash
# #15's GPU table in one command (aimed at under 6 minutes on an H100/H200): random-weight DiT-XL/2 + sd-vae (made
# here, never for quality), images/s, s/step, peak MB and the fraction of the card's measured bf16 matmul rate for
# fp16, bf16 (+ compile), fp8, int8, nf4 and streaming at batch 1, 8, 32, 64; then the plan and batch that
# `--vram-budget 4 --batch-size auto` picks, alone and under a 4 GB cap. Then the #15 GPU tests.
#   bash benchmarks/gpu_throughput.sh [OUT]
set -uo pipefail
OUT=${1:-out/gpu_throughput}
XL=${XL:-/tmp/xl}
PY=${PY:-python}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY benchmarks/make_xl.py "$XL" --dtypes fp32 || exit 1
$PY benchmarks/throughput.py --model "$XL/xl-fp32" --device cuda --timeout 150 | tee "$OUT/throughput.md"
$PY -m pytest -m gpu -q -p no:cacheprovider tests/test_runtime_gpu.py 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
