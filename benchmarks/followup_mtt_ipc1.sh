#!/usr/bin/env bash
# Part 1 of docs/experiments/followup-mtt-ipc1-raw-dit.md (pre-registered): one MTT set of Fashion-MNIST at IPC 1
# (stage-1 set M) x {stage 1, projection, VAE round trip, DIVER shipped preset, DIVER paper settings}, PReDD's five
# students plus the ConvNet, seeds 0-4 with recovery seed = student seed: 150 student runs. Resumable like the
# decisive runner: finished runs are copied to, and restored from, docs/results/followup_mtt_ipc1/ (commit it).
#   OMP_NUM_THREADS=1 JOBS=2 bash benchmarks/followup_mtt_ipc1.sh     # MTT (~1 h on one core), then ~1.5 h on two
# (with the project's virtual environment active: `python` is its interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=${R:-runs/followup_mtt}
KEEP=docs/results/followup_mtt_ipc1
JOBS=${JOBS:-2}
SEEDS=5
STUDENTS=convnet,vit,efficientnet,shufflenetv2,mobilenetv2,resnet18
mkdir -p "$R/M" "$KEEP"
source benchmarks/frozen.sh      # diver-lite from a frozen copy of the committed package
# The stage-1 set as the protocol defines it: distill's defaults (5 experts, width 64, 500 iterations, the
# validation split held out of the images and of the experts), seed 0; an interrupted distillation resumes.
[ -f "$R/M/mtt/images_best.pt" ] || diver-lite distill -o "$R/M/mtt" --method mtt --ipc 1 --seed 0 --resume

recover() {   # ARM_FOLDER [options]: one recovery of the MTT set, skipped when it exists
  local out=$1; shift
  [ -f "$out/mtt/images_best.pt" ] || diver-lite recover "$R/M/mtt" -o "$out" -q --no-png --overwrite "$@" >/dev/null
}
recover "$R/M/P" --control projection-grey
for s in $(seq 0 $((SEEDS - 1))); do
  recover "$R/M/R/seed$s" --control round-trip --seed "$s"
  recover "$R/M/D/seed$s" --method mtt --ipc 1 --seed "$s"
  recover "$R/M/Q/seed$s" --presets paper --seed "$s"
done
echo "M: stage-1 set, projection and $((3 * SEEDS)) recoveries ready" >&2

A="python benchmarks/followup_mtt_analyse.py"
$A --restore "$R" --keep "$KEEP"
diver-lite evaluate "$R/M/mtt" "$R/M/P/mtt" "$R/M/R/seed{seed}/mtt" "$R/M/D/seed{seed}/mtt" "$R/M/Q/seed{seed}/mtt" \
  --baseline "$R/M/mtt" --students "$STUDENTS" --seeds "$SEEDS" --protocol dc --jobs "$JOBS" -o "$R/eval_M" \
  --resume > "$R/eval_M.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do      # copy the finished runs back every two minutes, and once more at the end
  sleep 120
  $A --sync "$R" --keep "$KEEP"
done
wait "$pid"
$A --sync "$R" --keep "$KEEP"
$A "$R" --keep "$KEEP"
