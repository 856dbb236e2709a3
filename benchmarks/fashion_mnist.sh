#!/usr/bin/env bash
# The offline DIVER experiment on Fashion-MNIST at one IPC: random-real and DM sets, DM recovered by PReDD's loop
# (lambda 0, labels on every step, DDPM, raw pixels), by DIVER's defaults (the method table's DM preset), and a
# "VAE round trip only" control (t_init 0, one unconditional step), all with the embedded prior; the five sets
# evaluated in one `evaluate` (8 students x 5 seeds, EMA with re-estimated BN statistics), each paired against DM.
# PROTOCOL=dc|predd (default dc), JOBS processes.
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist.sh 1      # 2 cores: see docs/benchmarks/fashion-mnist-study.md for the measured times
#   OMP_NUM_THREADS=1 JOBS=16 PROTOCOL=predd benchmarks/fashion_mnist.sh 10     # on a 16-core machine
#   EVAL_ARGS="--seeds 3" passes more options to evaluate.
# Results: runs/fmnist_ipcN/eval_<protocol>/results.{md,json,png}. Finished steps and student runs are kept (a rerun
# with more seeds trains only the missing runs); a DM set already at runs/fmnist_ipcN/dm.pt is used as it is
# (examples/demo_dm_ipc1.pt and examples/demo_dm_ipc10.pt are this script's IPC 1 and IPC 10 DM sets).
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
R=${2:-runs/fmnist_ipc$IPC}
PROTOCOL=${PROTOCOL:-dc}
JOBS=${JOBS:-2}
mkdir -p "$R"
[ -f "$R/real.pt" ] || diver-lite distill -o "$R/real.pt" --method random-real --ipc "$IPC"
[ -f "$R/dm.pt" ] || diver-lite distill -o "$R/dm.pt" --ipc "$IPC" --iterations 200
[ -f "$R/predd/dm.pt" ] || diver-lite recover "$R/dm.pt" -o "$R/predd" --method dm --ipc "$IPC" \
  --presets imagenet --guidance-scale 0 \
  --label-phase all --sampler ddpm --pixel-range raw -q --overwrite
[ -f "$R/vae/dm.pt" ] || diver-lite recover "$R/dm.pt" -o "$R/vae" --t-init 0 --steps 1 -q --overwrite
[ -f "$R/diver/dm.pt" ] || diver-lite recover "$R/dm.pt" -o "$R/diver" --method dm --ipc "$IPC" -q --overwrite
E="$R/eval_$PROTOCOL"
diver-lite evaluate "$R/dm.pt" "$R/real.pt" "$R/vae/dm.pt" "$R/predd/dm.pt" "$R/diver/dm.pt" --baseline "$R/dm.pt" \
  --protocol "$PROTOCOL" --jobs "$JOBS" ${EVAL_ARGS:-} -o "$E" --resume
