#!/usr/bin/env bash
# Run HERE (with the package registry), before a GPU check: downloads the wheels the lent GPU machine lacks
# (diffusers, torchao, bitsandbytes, and the small pure-Python pieces diffusers imports) for its Python 3.12 /
# x86_64 Linux image, trims bitsandbytes to its CPU and CUDA 13.0 libraries, and writes them to
# benchmarks/gpu/carry/wheels (git-ignored). Then carry that folder with the run:
#   bash benchmarks/gpu/prepare.sh
#   device tool: run  command="bash benchmarks/gpu/check.sh"  carry=["benchmarks/gpu/carry"]
# It checks that the carried folder and the tracked tree fit the 64 MiB that travels with a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=benchmarks/gpu/carry/wheels
PYVER=${PYVER:-3.12}
mkdir -p "$DEST"
get() {   # NAME==VERSION: a wheel for the GPU image's Python (binary), no dependencies
  pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform any -d "$DEST" "$1"
}
for w in diffusers==0.42.1 torchao==0.18.0 regex importlib_metadata zipp pillow requests urllib3 idna \
    charset_normalizer certifi; do
  ls "$DEST" | grep -qi "^$(echo "${w%%==*}" | tr - _)-" || get "$w"
done
if ! ls "$DEST" | grep -q "^bitsandbytes-.*trimmed"; then
  tmp=$(mktemp -d)
  get bitsandbytes==0.50.2 && mv "$DEST"/bitsandbytes-*.whl "$tmp/"
  python3 benchmarks/gpu/trim_wheel.py "$tmp"/bitsandbytes-*.whl "$DEST" --keep 'libbitsandbytes_cpu' \
    --keep 'libbitsandbytes_cuda130'
  rm -rf "$tmp"
fi
carried=$(du -sk benchmarks/gpu/carry | cut -f1)
tracked=$(git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
echo "carry: $((carried / 1024)) MiB in benchmarks/gpu/carry; tracked tree: $((tracked / 1024)) MiB;" \
     "together $(((carried + tracked) / 1024)) MiB of the 64 MiB that travel"
[ $((carried + tracked)) -lt $((64 * 1024)) ] || { echo "too large to travel" >&2; exit 1; }
ls -la "$DEST"
