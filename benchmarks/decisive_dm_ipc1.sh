#!/usr/bin/env bash
# The pre-registered experiment of docs/experiments/decisive-dm-ipc1.md: DM IPC 1 on Fashion-MNIST, two stage-1
# sets x {stage 1, projection, VAE round trip, DIVER shipped preset, DIVER paper settings}, PReDD's five students
# plus the ConvNet, 15 seeds with recovery seed = student seed. Resumable across sessions: finished student runs are
# restored from, and copied back to, docs/results/decisive_dm_ipc1/ (commit that folder to keep them).
#   OMP_NUM_THREADS=1 JOBS=2 bash benchmarks/decisive_dm_ipc1.sh          # ~6 h on two cores
#   SETS="A" bash benchmarks/decisive_dm_ipc1.sh                           # one stage-1 set only
# (with the project's virtual environment active: `python` is its interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=${R:-runs/decisive}
KEEP=docs/results/decisive_dm_ipc1
JOBS=${JOBS:-1}
SEEDS=15
SETS=${SETS:-A B}
STUDENTS=convnet,vit,efficientnet,shufflenetv2,mobilenetv2,resnet18
mkdir -p "$R/A" "$R/B" "$KEEP"
source benchmarks/frozen.sh      # diver-lite from a frozen copy of the committed package
[ -f "$R/A/dm.pt" ] || cp examples/demo_dm_ipc1.pt "$R/A/dm.pt"
# Set B as the protocol defined it (distilled before the validation split was held out of stage 1 by default).
case " $SETS " in *" B "*) [ -f "$R/B/dm.pt" ] || diver-lite distill -o "$R/B/dm.pt" --ipc 1 --seed 1 --include-validation ;; esac

recover() {   # SET ARM OUT [options]: one recovery, skipped when its set exists
  local set=$1 out=$2; shift 2
  [ -f "$out/dm.pt" ] || diver-lite recover "$R/$set/dm.pt" -o "$out" -q --no-png --overwrite "$@" >/dev/null
}
for set in $SETS; do
  recover "$set" "$R/$set/P" --control projection-grey
  for s in $(seq 0 $((SEEDS - 1))); do
    recover "$set" "$R/$set/R/seed$s" --control round-trip --seed "$s"
    recover "$set" "$R/$set/D/seed$s" --method dm --ipc 1 --seed "$s"
    recover "$set" "$R/$set/Q/seed$s" --presets paper --seed "$s"
  done
  echo "$set: stage-1 set, projection and $((3 * SEEDS)) recoveries ready" >&2
done

python benchmarks/decisive_analyse.py --restore "$R" --keep "$KEEP"
pids=()
for set in $SETS; do
  E="$R/eval_$set"
  diver-lite evaluate "$R/$set/dm.pt" "$R/$set/P/dm.pt" "$R/$set/R/seed{seed}/dm.pt" "$R/$set/D/seed{seed}/dm.pt" \
    "$R/$set/Q/seed{seed}/dm.pt" --baseline "$R/$set/dm.pt" --students "$STUDENTS" --seeds "$SEEDS" \
    --protocol dc --jobs "$JOBS" -o "$E" --resume > "$R/eval_$set.log" 2>&1 &
  pids+=($!)
done
# Copy the finished runs back every two minutes while the evaluations run, and once more at the end.
while kill -0 "${pids[@]}" 2>/dev/null; do
  sleep 120
  python benchmarks/decisive_analyse.py --sync "$R" --keep "$KEEP"
done
python benchmarks/decisive_analyse.py --sync "$R" --keep "$KEEP"
for pid in "${pids[@]}"; do wait "$pid"; done
python benchmarks/decisive_analyse.py "$R" --keep "$KEEP"
