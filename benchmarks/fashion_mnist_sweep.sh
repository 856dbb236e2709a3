#!/usr/bin/env bash
# The validation sweep that chooses DIVER's Fashion-MNIST defaults for one stage-1 set (issue 11): the method's
# PReDD preset (t_init/K), then one knob changed per row (t_init = K at 5, 10, 20 and 30 but the preset's own,
# lambda, the guidance window, the label phase), a "VAE round trip only" control, and the stage-1 set itself, all
# recovered by the embedded prior and evaluated together on the VALIDATION split (5,000 training images held out;
# `evaluate --split val`), paired against the stage-1 set.
# The test split chooses nothing: report the chosen row with benchmarks/fashion_mnist.sh / fashion_mnist_mtt.sh.
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_sweep.sh dm 1 [SET] [OUT]
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_sweep.sh mtt 10 runs/fmnist_ipc10/mtt
# The cheaper protocol of a sweep: the five cross-architecture students, 2 seeds, DC/DM's evaluator; override with
# EVAL_ARGS (e.g. "--seeds 5"), JOBS processes, PROTOCOL=dc|predd. Results: OUT/eval_val_<protocol>/results.*;
# finished steps and student runs are kept, so an interrupted sweep continues where it stopped and a rerun with
# more seeds or students trains only the runs it lacks.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
METHOD=${1:?method: dm or mtt (any method of recover --method)}
IPC=${2:-1}
# shellcheck source=benchmarks/recover_variants.sh
. "$(dirname "$0")/recover_variants.sh"
SET=${3:-$(stage1_set "$METHOD" "$IPC")}
R=${4:-runs/fmnist_ipc$IPC/sweep_$METHOD}
PROTOCOL=${PROTOCOL:-dc}
JOBS=${JOBS:-2}
EVAL_ARGS=${EVAL_ARGS:---seeds 2 --students vit,efficientnet,shufflenetv2,mobilenetv2,resnet18}
mkdir -p "$R"
K=$(preset_steps "$METHOD" "$IPC")
T=$(preset_value "$METHOD" "$IPC" t_init)
TK=()   # t_init = K at 5, 10, 20 and 30, less the one that is the preset itself (DM IPC 10: 20/20)
for n in 5 10 20 30; do
  [ "$n" = "$T" ] && [ "$n" = "$K" ] || TK+=("tk$n" "--t-init $n --steps $n")
done
SETS=("$SET")
recover_variants "$SET" "$R" "--method $METHOD --ipc $IPC --presets imagenet" \
  preset "" \
  "${TK[@]}" \
  lambda0 "--guidance-scale 0" \
  lambda025 "--guidance-scale 0.25" \
  lambda1 "--guidance-scale 1" \
  window_all "--guidance-window 0:$((K - 1))" \
  labels_all "--label-phase all" \
  vae_round_trip "--t-init 0 --steps 1"
E="$R/eval_val_$PROTOCOL"
diver-lite evaluate "${SETS[@]}" --baseline "$SET" --split val --protocol "$PROTOCOL" \
  --jobs "$JOBS" $EVAL_ARGS -o "$E" --resume
python "$(dirname "$0")/sweep_choice.py" "$E/results.json"
