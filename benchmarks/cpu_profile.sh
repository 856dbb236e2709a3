#!/usr/bin/env bash
# The memory plans on this CPU, in one command (about 15 minutes on one thread): random-weight DiT-XL/2 + sd-vae
# folders in fp32 and bf16 (made here, never for quality) profiled against the fp32 reference, then the embedded
# default with the real-data judge. Tables: OUT/xl/profile.md, OUT/default/profile.md (docs/benchmarks/memory.md).
#   OMP_NUM_THREADS=1 bash benchmarks/cpu_profile.sh [OUT]
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
OUT=${1:-out/cpu_profile}
XL=${XL:-/tmp/xl}
python benchmarks/make_xl.py "$XL" --dtypes fp32,bf16
diver-lite profile -o "$OUT/xl" --overwrite --model "$XL/xl-fp32" --device cpu --images 1 --batch-size 1 \
    --plans bf16,int8,int8+keep-modulation,bf16+offload-model,int8+offload-model+vae-slicing,bf16+offload-stream+vae-slicing
diver-lite profile -o "$OUT/default" --overwrite --device cpu
