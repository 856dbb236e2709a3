#!/usr/bin/env bash
# The memory plans on any CUDA machine, in one command (about 5 minutes on an H100): random-weight DiT-XL/2 +
# sd-vae (made here, never for quality), `diver-lite profile` of the fp32 reference and every plan on the DM IPC 1
# schedule (t_init 10, K 15), batch 1; then the GPU tests and the attention-slicing measurement.
#   bash benchmarks/gpu_profile.sh [OUT]
# Works installed or not (the repository on PYTHONPATH, `python3 -m diver_lite.cli.main`); on the lent GPU machine
# run benchmarks/gpu/check.sh first, or set PYTHONPATH to its site folder, for diffusers and bitsandbytes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/gpu_profile}
XL=${XL:-/tmp/xl}
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DIVER=${DIVER:-$PY -m diver_lite.cli.main}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY benchmarks/make_xl.py "$XL" --dtypes fp32 || exit 1
$DIVER profile -o "$OUT/xl" --overwrite --model "$XL/xl-fp32" --device cuda --images 3 --batch-size 1 \
    --plans fp16,bf16,int8,int8+keep-modulation,fp16+offload-model,fp16+offload-stream,fp16+offload-sequential \
    --timeout 240
$PY -m pytest -m gpu -q -p no:cacheprovider tests/test_runtime_gpu.py 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
$PY benchmarks/attention_slicing.py --device cuda | tee "$OUT/attention_slicing.md"
