# Sourced by the Fashion-MNIST sweep and ablation scripts: recover one set once per variant (a name and its extra
# recover options), skipping variants already written, and append each recovered set to the array SETS; and the two
# things both scripts derive from METHOD and IPC.
#   recover_variants SET OUT_ROOT "COMMON OPTIONS" NAME "OPTIONS" [NAME "OPTIONS" ...]
recover_variants() {
  local set=$1 root=$2 common=$3 name
  name=$(basename "$set")
  shift 3
  while [ $# -gt 1 ]; do
    # shellcheck disable=SC2086  # the options are words
    [ -e "$root/$1/$name" ] || diver-lite recover "$set" -o "$root/$1" $common $2 -q --no-png --overwrite
    SETS+=("$root/$1/$name")
    shift 2
  done
}

# The stage-1 set the benchmark scripts write for METHOD at IPC: MTT's folder, else METHOD.pt.
stage1_set() {
  if [ "$1" = mtt ]; then echo "runs/fmnist_ipc$2/mtt"; else echo "runs/fmnist_ipc$2/$1.pt"; fi
}

# A field of PReDD's preset for METHOD at IPC: preset_value METHOD IPC steps (K: the guidance-window rows span its
# steps) or t_init.
preset_value() {
  python -c "from diver_lite.core.config import RecoverConfig as C; print(C.from_preset('$1', $2, 'predd').$3)"
}
preset_steps() { preset_value "$1" "$2" steps; }
