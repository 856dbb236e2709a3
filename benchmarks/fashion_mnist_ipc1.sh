#!/usr/bin/env bash
# The offline DIVER experiment at IPC 1 on Fashion-MNIST: random-real and DM sets, DM recovered with the embedded
# prior (PReDD's DM IPC 1 schedule: t_init 10, K 15), each evaluated on six students x 3 seeds (300 epochs).
# About 45 minutes on one thread of the 2-core development machine. Results: runs/fmnist_ipc1/eval/results.md
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=${1:-runs/fmnist_ipc1}
mkdir -p "$R"
[ -f "$R/real_ipc1.pt" ] || diver-lite distill -o "$R/real_ipc1.pt" --method random-real --ipc 1
[ -f "$R/dm_ipc1.pt" ] || diver-lite distill -o "$R/dm_ipc1.pt" --ipc 1 --iterations 200
[ -f "$R/dm_ipc1_rec/dm_ipc1.pt" ] || diver-lite recover "$R/dm_ipc1.pt" -o "$R/dm_ipc1_rec" --method dm --ipc 1 -q
diver-lite evaluate "$R/real_ipc1.pt" "$R/dm_ipc1.pt" "$R/dm_ipc1_rec/dm_ipc1.pt" -o "$R/eval"
