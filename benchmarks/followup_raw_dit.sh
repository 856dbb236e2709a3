#!/usr/bin/env bash
# Part 2 of docs/experiments/followup-mtt-ipc1-raw-dit.md (pre-registered): the raw-DiT arm W on the decisive
# experiment's stage-1 set A, for the five lowest seeds that experiment finished on this CPU, paired with its S, R and
# D runs of those seeds. Resumable like the decisive runner: finished runs are copied to docs/results/followup_raw_dit/
# (commit that folder) and restored from there. Needs five whole decisive seeds on this CPU first.
#   OMP_NUM_THREADS=1 bash benchmarks/followup_raw_dit.sh          # 30 student runs, ~40 min on one core
# (with the project's virtual environment active: `python` is its interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
R=${R:-runs/decisive}
F=${F:-runs/followup}
STUDENTS=convnet,vit,efficientnet,shufflenetv2,mobilenetv2,resnet18
SEEDS=$(python benchmarks/followup_analyse.py --seeds)
mkdir -p "$R/A" "$F"
[ -f "$R/A/dm.pt" ] || cp examples/demo_dm_ipc1.pt "$R/A/dm.pt"
source benchmarks/frozen.sh      # diver-lite from a frozen copy of the committed package

for s in ${SEEDS//,/ }; do
  out="$R/A/W/seed$s"
  [ -f "$out/dm.pt" ] || diver-lite recover "$R/A/dm.pt" -o "$out" -q --no-png --overwrite --control raw-dit \
    --seed "$s" >/dev/null
done
echo "W: seeds $SEEDS recovered" >&2
python benchmarks/followup_analyse.py --restore "$F"
diver-lite evaluate "$R/A/W/seed{seed}/dm.pt" --students "$STUDENTS" --seeds "$SEEDS" --protocol dc -o "$F/eval_W" \
  --resume > "$F/eval_W.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 120
  python benchmarks/followup_analyse.py --sync "$F"
done
wait "$pid"
python benchmarks/followup_analyse.py --sync "$F"
python benchmarks/followup_analyse.py
