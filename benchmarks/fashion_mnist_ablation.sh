#!/usr/bin/env bash
# The ablation of SPEC §6 on the Fashion-MNIST DM set at one IPC (run benchmarks/fashion_mnist.sh IPC first, or
# give the DM set): DIVER's defaults with one knob changed per row, recovered by the embedded prior with PReDD's
# t_init/K for DM, each set evaluated as in fashion_mnist.sh (six students x 3 seeds, 300 epochs). Two evaluation
# processes run side by side (one per core).
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_ablation.sh 1 [DM_SET] [OUT]     # ~25 min on the 2-core machine
# Results: OUT/eval_a/results.md and OUT/eval_b/results.md.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
DM=${2:-runs/fmnist_ipc$IPC/dm.pt}
R=${3:-runs/fmnist_ipc$IPC/ablation}
mkdir -p "$R"
K=$(python -c "from diver_lite.config import RecoverConfig as C; print(C.from_preset('dm', $IPC).steps)")
declare -A VARIANTS=(
  [lambda0]="--guidance-scale 0"
  [lambda1]="--guidance-scale 1"
  [window_all]="--guidance-window 0:$((K - 1))"
  [labels_all]="--label-phase all"
  [pixels_raw]="--pixel-range raw"
  [cfg4]="--cfg-channels 4"
)
for name in "${!VARIANTS[@]}"; do
  [ -f "$R/$name/$(basename "$DM")" ] || diver-lite recover "$DM" -o "$R/$name" --method dm --ipc "$IPC" \
    ${VARIANTS[$name]} -q --overwrite
done
set_of() { echo "$R/$1/$(basename "$DM")"; }
diver-lite evaluate "$(set_of lambda0)" "$(set_of lambda1)" "$(set_of window_all)" -o "$R/eval_a" &
diver-lite evaluate "$(set_of labels_all)" "$(set_of pixels_raw)" "$(set_of cfg4)" -o "$R/eval_b" &
wait
