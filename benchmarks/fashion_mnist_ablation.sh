#!/usr/bin/env bash
# The ablation of the open settings (docs/algorithm.md) on a Fashion-MNIST stage-1 set at one IPC (run benchmarks/fashion_mnist.sh IPC or
# fashion_mnist_mtt.sh IPC first, or give the set): PReDD's preset for METHOD (dm or mtt; t_init/K, window) with
# DIVER's other defaults, one knob changed per row, recovered by the embedded prior, all evaluated in one `evaluate`
# (8 students x 5 seeds) and paired against the unchanged row.
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_ablation.sh 1 [SET] [OUT]
#   OMP_NUM_THREADS=1 METHOD=mtt benchmarks/fashion_mnist_ablation.sh 1     # runs/fmnist_ipc1/mtt, ablation_mtt/
# Results: OUT/eval_<protocol>/results.{md,json,png}. METHOD=dm|mtt (default dm), PROTOCOL=dc|predd, JOBS
# processes, EVAL_ARGS more evaluate options (e.g. "--seeds 3 --students mlp,lenet,resnet18,vit").
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
METHOD=${METHOD:-dm}
# shellcheck source=benchmarks/recover_variants.sh
. "$(dirname "$0")/recover_variants.sh"
SET=${2:-$(stage1_set "$METHOD" "$IPC")}
if [ "$METHOD" = dm ]; then R=${3:-runs/fmnist_ipc$IPC/ablation}; else R=${3:-runs/fmnist_ipc$IPC/ablation_$METHOD}; fi
PROTOCOL=${PROTOCOL:-dc}
JOBS=${JOBS:-2}
mkdir -p "$R"
K=$(preset_steps "$METHOD" "$IPC")
SETS=()
recover_variants "$SET" "$R" "--method $METHOD --ipc $IPC --presets imagenet" \
  defaults "" \
  lambda0 "--guidance-scale 0" \
  lambda1 "--guidance-scale 1" \
  window_all "--guidance-window 0:$((K - 1))" \
  labels_all "--label-phase all" \
  pixels_raw "--pixel-range raw" \
  cfg4 "--cfg-channels 4"
E="$R/eval_$PROTOCOL"
diver-lite evaluate "${SETS[@]}" --baseline "${SETS[0]}" --protocol "$PROTOCOL" --jobs "$JOBS" ${EVAL_ARGS:-} \
  -o "$E" --resume
