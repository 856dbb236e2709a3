#!/usr/bin/env bash
# The MTT rows of the offline experiment at one IPC: an MTT set (diver-lite distill --method mtt), recovered by
# PReDD's loop (lambda 0, labels on every step, DDPM, raw pixels), by DIVER with the method table's MTT preset, and
# a "VAE round trip only" control (t_init 0, one unconditional step: encode, an almost-identity DiT step, decode);
# the four evaluated together, each paired against the MTT set. PROTOCOL=dc|predd (default dc), JOBS processes,
# EVAL_ARGS more options to evaluate (e.g. "--seeds 3 --students vit,efficientnet,shufflenetv2,mobilenetv2,resnet18").
#   OMP_NUM_THREADS=1 benchmarks/fashion_mnist_mtt.sh 1
# Results: runs/fmnist_ipcN/eval_mtt_<protocol>/results.{md,json,png}. Finished steps and student runs are kept (a
# rerun with more seeds trains only the missing runs); the experts are cached under runs/experts and reused across
# IPCs when their settings match.
set -euo pipefail
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
IPC=${1:-1}
R=${2:-runs/fmnist_ipc$IPC}
PROTOCOL=${PROTOCOL:-dc}
JOBS=${JOBS:-2}
mkdir -p "$R"
[ -f "$R/mtt/images_best.pt" ] || diver-lite distill -o "$R/mtt" --method mtt --ipc "$IPC" \
  --experts-dir runs/experts --overwrite
[ -f "$R/mtt_predd/mtt/images_best.pt" ] || diver-lite recover "$R/mtt" -o "$R/mtt_predd" --method mtt \
  --presets imagenet --ipc "$IPC" --guidance-scale 0 --label-phase all --sampler ddpm --pixel-range raw -q --overwrite
[ -f "$R/mtt_diver/mtt/images_best.pt" ] || diver-lite recover "$R/mtt" -o "$R/mtt_diver" --method mtt \
  --ipc "$IPC" -q --overwrite
[ -f "$R/mtt_vae/mtt/images_best.pt" ] || diver-lite recover "$R/mtt" -o "$R/mtt_vae" --t-init 0 --steps 1 \
  -q --overwrite
E="$R/eval_mtt_$PROTOCOL"
diver-lite evaluate "$R/mtt" "$R/mtt_vae/mtt" "$R/mtt_predd/mtt" "$R/mtt_diver/mtt" --baseline "$R/mtt" \
  --protocol "$PROTOCOL" --jobs "$JOBS" ${EVAL_ARGS:-} -o "$E" --resume
