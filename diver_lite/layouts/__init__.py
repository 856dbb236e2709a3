"""Distilled-set layouts: one file per layout, each a `Layout` (layout.py) named `ENTRY` that detects,
reads and writes its format; registry.py reads and writes a set in any of them. Files from others are untrusted:
tensors are loaded with `torch.load(..., weights_only=True)`; npz and image folders need neither torch nor pickle."""

from diver_lite.layouts.distilled_set import DistilledSet  # noqa: F401
from diver_lite.layouts.registry import LAYOUTS, detect_layout, get_layout, read_set, write_set  # noqa: F401
