#!/usr/bin/env bash
# The offline DIVER experiment on Fashion-MNIST at one IPC: random-real and DM sets, DM recovered by PReDD's loop
# (lambda 0, labels on every step, DDPM, raw pixels) and by DIVER's defaults, all with the embedded prior and
# PReDD's t_init/K for DM at that IPC; each set evaluated on six students x 3 seeds (300 epochs), two evaluation
# processes side by side (one per core of the 2-core machine).
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist.sh 1      # measured: DM ~25 min, then ~7 min per evaluated set
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist.sh 10     # measured: DM ~15 min, then ~24 min per evaluated set
# Results: runs/fmnist_ipcN/eval_{baselines,recovered}/results.md (+ .json, .png). Finished steps are skipped.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
R=${2:-runs/fmnist_ipc$IPC}
mkdir -p "$R"
[ -f "$R/real.pt" ] || diver-lite distill -o "$R/real.pt" --method random-real --ipc "$IPC"
[ -f "$R/dm.pt" ] || diver-lite distill -o "$R/dm.pt" --ipc "$IPC" --iterations 200
[ -f "$R/predd/dm.pt" ] || diver-lite recover "$R/dm.pt" -o "$R/predd" --method dm --ipc "$IPC" --guidance-scale 0 \
  --label-phase all --sampler ddpm --pixel-range raw -q --overwrite
[ -f "$R/diver/dm.pt" ] || diver-lite recover "$R/dm.pt" -o "$R/diver" --method dm --ipc "$IPC" -q --overwrite
[ -f "$R/eval_baselines/results.md" ] || { rm -rf "$R/eval_baselines"
  diver-lite evaluate "$R/real.pt" "$R/dm.pt" -o "$R/eval_baselines" & }
[ -f "$R/eval_recovered/results.md" ] || { rm -rf "$R/eval_recovered"
  diver-lite evaluate "$R/predd/dm.pt" "$R/diver/dm.pt" -o "$R/eval_recovered" & }
wait
