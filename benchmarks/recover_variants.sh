# Sourced by the Fashion-MNIST sweep and ablation scripts: recover one set once per variant (a name and its extra
# recover options), skipping variants already written, and append each recovered set to the array SETS.
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
