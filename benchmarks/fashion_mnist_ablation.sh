#!/usr/bin/env bash
# The ablation of SPEC §6 on the Fashion-MNIST DM set at one IPC (run benchmarks/fashion_mnist.sh IPC first, or
# give the DM set): DIVER's defaults with one knob changed per row, recovered by the embedded prior with PReDD's
# t_init/K for DM, all evaluated in one `evaluate` (8 students x 5 seeds) and paired against DIVER's defaults.
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_ablation.sh 1 [DM_SET] [OUT]
# Results: OUT/eval_<protocol>/results.{md,json,png}. PROTOCOL=dc|predd, JOBS processes, EVAL_ARGS more
# evaluate options (e.g. "--seeds 3 --students mlp,lenet,resnet18,mobilenetv2,efficientnet,shufflenetv2,vit").
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
DM=${2:-runs/fmnist_ipc$IPC/dm.pt}
R=${3:-runs/fmnist_ipc$IPC/ablation}
PROTOCOL=${PROTOCOL:-dc}
JOBS=${JOBS:-2}
mkdir -p "$R"
K=$(python -c "from diver_lite.core.config import RecoverConfig as C; print(C.from_preset('dm', $IPC).steps)")
SETS=()
# shellcheck source=benchmarks/recover_variants.sh
. "$(dirname "$0")/recover_variants.sh"
recover_variants "$DM" "$R" "--method dm --ipc $IPC --presets imagenet" \
  defaults "" \
  lambda0 "--guidance-scale 0" \
  lambda1 "--guidance-scale 1" \
  window_all "--guidance-window 0:$((K - 1))" \
  labels_all "--label-phase all" \
  pixels_raw "--pixel-range raw" \
  cfg4 "--cfg-channels 4"
E="$R/eval_$PROTOCOL"
[ -f "$E/results.md" ] || { rm -rf "$E"
  diver-lite evaluate "${SETS[@]}" --baseline "${SETS[0]}" --protocol "$PROTOCOL" --jobs "$JOBS" ${EVAL_ARGS:-} -o "$E"; }
