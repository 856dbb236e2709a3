# Sourced by the long-running experiment runners: diver-lite runs from a frozen copy of the package (the committed
# tree when it was first made, under $R/.frozen), so that editing the checkout while evaluations run for hours can
# neither change nor break them. -P: the working directory (the live checkout) is not put before it on sys.path.
FROZEN="$(pwd)/$R/.frozen"
if [ ! -f "$FROZEN/diver_lite/__init__.py" ]; then
  rm -rf "$FROZEN" && mkdir -p "$FROZEN" && git archive HEAD diver_lite | tar -x -C "$FROZEN"
fi
diver-lite() { PYTHONPATH="$FROZEN" python -P -m diver_lite.cli.main "$@"; }
