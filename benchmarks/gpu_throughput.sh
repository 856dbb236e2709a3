#!/usr/bin/env bash
# The GPU throughput table is now a step of the prepared GPU check (benchmarks/gpu/check.sh: bf16 at batch 1/8/32/64,
# compiled bf16, the 4 GB plan under a cap that includes the CUDA context, fp8/nf4/int8/fp8-compute/stream, the GPU
# tests). This name runs it.
#   bash benchmarks/gpu_throughput.sh [OUT]
exec bash "$(dirname "$0")/gpu/check.sh" "$@"
