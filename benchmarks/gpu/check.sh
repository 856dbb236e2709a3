#!/usr/bin/env bash
# The GPU check, prepared to work the first time on a lent machine with no network (Python 3.12, torch with CUDA,
# onnxruntime; no diffusers, bitsandbytes or torchao: they come from benchmarks/gpu/carry, made here by
# benchmarks/gpu/prepare.sh). Most decision-relevant first, each step under its own timeout, a global deadline that
# skips what no longer fits, no failure stopping the rest; rows stream as they finish.
#   bash benchmarks/gpu/prepare.sh                       # here, once (downloads and trims the wheels)
#   bash benchmarks/gpu/check.sh [OUT]                   # there, with benchmarks/gpu/carry carried
# Writes to OUT (default: $OUT if set, else out/gpu_check), at most 5 files: summary.md (also printed last),
# rows.jsonl (one JSON line per measured row), check.log, env.txt, pytest.log. DEADLINE=seconds (default 470).
# Without CUDA (a dry run on a CPU) every CUDA step is refused in one line and the script ends at once.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-out/gpu_check}}
DEADLINE=${DEADLINE:-470}
PY=${PY:-python3}
XL=${XL:-${TMPDIR:-/tmp}/diver-lite-xl}
SITE=${SITE:-${TMPDIR:-/tmp}/diver-lite-site}
WHEELS=${WHEELS:-benchmarks/gpu/carry/wheels}
START=$(date +%s)
mkdir -p "$OUT"
LOG=$OUT/check.log ROWS=$OUT/rows.jsonl SUMMARY=$OUT/summary.md ENVF=$OUT/env.txt PYTEST_LOG=$OUT/pytest.log
: > "$LOG"; : > "$ROWS"
STEPS=()

left() { echo $((DEADLINE - ($(date +%s) - START))); }
note() { echo "$*" | tee -a "$LOG"; }

# step NAME SECONDS NEEDS_CUDA CMD...: runs CMD under min(SECONDS, the time left), records how it ended.
step() {
  local name=$1 want=$2 cuda=$3; shift 3
  if [ "$cuda" = cuda ] && [ "$HAVE_CUDA" != 1 ]; then
    STEPS+=("| $name | refused: no CUDA device here |"); note "[$name] refused: no CUDA device here"; return
  fi
  local l; l=$(left)
  local budget=$((want < l - 5 ? want : l - 5))
  if [ "$budget" -lt 20 ]; then
    STEPS+=("| $name | skipped: ${l}s left before the deadline |"); note "[$name] skipped: deadline"; return
  fi
  note "[$name] up to ${budget}s ..."
  local t0; t0=$(date +%s)
  timeout -k 5 "$budget" "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]} took=$(($(date +%s) - t0))
  case $rc in
    0) STEPS+=("| $name | ok, ${took}s |") ;;
    124|137) STEPS+=("| $name | timed out after ${took}s (rows finished before are kept) |") ;;
    *) STEPS+=("| $name | failed (exit $rc) after ${took}s: $(tail -1 "$LOG" | cut -c1-120) |") ;;
  esac
}

# 1. Set up from the carried wheels, only what the image lacks (never torch; never the network).
setup() {
  local need=() optional=()
  $PY -c "import diffusers" 2>/dev/null || need+=(diffusers- importlib_metadata- zipp- regex-)
  $PY -c "import requests" 2>/dev/null || need+=(requests- urllib3- idna- charset_normalizer- certifi-)
  $PY -c "import PIL" 2>/dev/null || need+=(pillow-)
  $PY -c "import torchao" 2>/dev/null || optional+=(torchao-)          # int8 on the CPU, fp8-compute
  $PY -c "import bitsandbytes" 2>/dev/null || optional+=(bitsandbytes-)  # int8 and nf4 on CUDA
  [ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && { echo "nothing to install"; return 0; }
  local files=() missing=0
  for n in "${need[@]}" "${optional[@]}"; do
    local f; f=$(ls "$WHEELS"/"$n"*.whl 2>/dev/null | head -1)
    if [ -n "$f" ]; then files+=("$f"); continue; fi
    echo "no carried wheel for ${n%-} (run benchmarks/gpu/prepare.sh here and carry benchmarks/gpu/carry)"
    case " ${need[*]} " in *" $n "*) missing=1 ;; esac       # an optional one only skips its plans
  done
  if [ ${#files[@]} -gt 0 ]; then
    $PY -m pip install -q --no-index --no-deps --target "$SITE" "${files[@]}" || return 1
    rm -rf "$SITE/test"     # torchao's wheel ships a top-level `test` package: it must shadow nothing
  fi
  return $missing
}
export PY WHEELS SITE
step setup 120 any bash -c "$(declare -f setup); setup"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
HAVE_CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)

# 2. Versions, the card, the measured matmul rates.
envinfo() {
  $PY - <<'EOF'
import importlib, json, platform, sys
sys.path.insert(0, "benchmarks")
import torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
for name in ("diffusers", "torchao", "bitsandbytes", "onnxruntime", "accelerate"):
    try:
        info[name] = importlib.import_module(name).__version__
    except Exception as e:  # noqa: BLE001
        info[name] = f"missing ({type(e).__name__})"
if torch.cuda.is_available():
    from throughput import matmul_rate
    p = torch.cuda.get_device_properties(0)
    info.update(card=p.name, memory_gb=round(p.total_memory / 2**30, 1), capability=".".join(map(str, (p.major, p.minor))),
                bf16_matmul_tflops=round(matmul_rate("cuda") / 1e12, 1),
                fp32_strict_matmul_tflops=round(matmul_rate("cuda", torch.float32) / 1e12, 1))
print(json.dumps(info))
EOF
}
step env 60 any bash -c "$(declare -f envinfo); PY=$PY envinfo > '$ENVF' && cat '$ENVF'"

TP="$PY benchmarks/throughput.py --model $XL/xl-fp32 --device cuda --rows $ROWS"
# 3. A random-weight DiT-XL/2 + sd-vae (for time and memory, never quality).
step make-xl 150 cuda $PY benchmarks/make_xl.py "$XL" --dtypes fp32
# 4. bf16 images/s at batch 1/8/32/64 (the goal: >= 50 images/s at the best batch, >= 35 % of the matmul rate).
step bf16 150 cuda $TP --plans bf16 --batches 1,8,32,64 --budget 0 --timeout 140
# 5. compile: which mode holds on this build (the upstream bug in three lines), then compiled bf16 vs eager.
step compile-repro 60 cuda $PY benchmarks/gpu/compile_repro.py
step bf16-compile 200 cuda $TP --plans bf16+compile --batches 1,8 --budget 0 --timeout 190
# 6. The 4 GB plan with --batch-size auto, alone and under a 4 GB cap that includes the CUDA context.
step budget-4gb 120 cuda $TP --plans "" --budget 4 --cap 4 --batches 1,64 --timeout 55
# 7. Low-bit and streaming plans.
step low-bit 200 cuda $TP --plans fp8,nf4,int8,fp8-compute,bf16+offload-stream --batches 1,8 --budget 0 --timeout 38
# 8. The GPU tests, skips with their reasons.
step gpu-tests 150 cuda bash -c "$PY -m pytest -o addopts= -m gpu -rs -q -p no:cacheprovider tests/test_runtime_gpu.py > '$PYTEST_LOG' 2>&1; rc=\$?; tail -25 '$PYTEST_LOG'; exit \$rc"

{
  echo "# GPU check, $(date -u +%Y-%m-%d) ($(left)s of ${DEADLINE}s left at the end)"
  echo
  echo "Environment: $(cat "$ENVF" 2>/dev/null || echo unknown)"
  echo
  echo "| step | how it ended |"; echo "|---|---|"
  printf '%s\n' "${STEPS[@]}"
  echo
  echo "| plan | batch | images/s | s/step | peak MB | DiT TFLOP/s | of bf16 matmul rate |"; echo "|---|---|---|---|---|---|---|"
  grep -E '^\| [^|]+ \| [0-9-]+ \|' "$LOG" | grep -v '^| step' || true
  grep -h '"compile"' "$LOG" | sed 's/^/compile repro: /' || true
} > "$SUMMARY"
cat "$SUMMARY"
