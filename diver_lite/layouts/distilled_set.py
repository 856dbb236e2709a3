"""DistilledSet: a distilled set in memory (numpy float32 images in a named pixel space, hard or soft labels), with
what its layout needs to write it back, and the checks every reader's result passes."""

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.tensors import describe


@dataclass
class DistilledSet:
    images: np.ndarray            # [N, C, H, W] float32, C in {1, 3}, H == W; NCFM: the 2x2 mosaics
    labels: np.ndarray            # [N] int64, or soft [N, num_classes] float32
    layout: str                   # a Layout's name (layouts/)
    pixel_space: str              # one of prepare.PIXEL_SPACES or a custom mean/std space
    source: Path
    extra: dict = field(default_factory=dict)  # what the writer needs to reproduce the layout
    warnings: list = field(default_factory=list)  # e.g. values that contradict the assumed pixel space

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def hard_labels(self) -> np.ndarray:
        """[N] int64: soft labels map to their argmax (the DiT class); the set keeps the soft ones."""
        return self.labels.argmax(axis=1) if self.labels.ndim == 2 else self.labels

    @property
    def num_labels(self) -> int:
        return self.labels.shape[1] if self.labels.ndim == 2 else int(self.labels.max()) + 1

    def with_images(self, images: np.ndarray) -> "DistilledSet":
        return replace(self, images=images)


def validate_set(dset: DistilledSet) -> None:
    x, y, src = dset.images, dset.labels, dset.source
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise InputError(f"{src}: images must be [N, C, H, W], found {describe(x)}", "check the layout")
    n, c, h, w = x.shape
    if n == 0:
        raise InputError(f"{src}: the set is empty", "give a set with at least one image")
    if c not in (1, 3):
        raise InputError(f"{src}: images have {c} channels", "diver-lite reads 1 (grey) or 3 (RGB) channels")
    if h != w:
        raise InputError(f"{src}: images are {h}x{w}, not square", "crop or pad them to a square")
    if h < 8:
        raise InputError(f"{src}: images are {h}x{w}", "images must be at least 8x8")
    if dset.layout == "ncfm" and h % 2:
        raise InputError(f"{src}: NCFM mosaics must have an even size, found {h}", "check the layout")
    if not np.isfinite(x).all():
        raise InputError(f"{src}: images contain NaN or inf", "fix or drop those images first")
    if not isinstance(y, np.ndarray) or y.ndim not in (1, 2) or y.shape[0] != n:
        raise InputError(f"{src}: labels must be [N] or soft [N, C] with N = {n}, found {describe(y)}",
                         "give one label per image")
    if y.ndim == 1 and (y.dtype.kind == "f" or (y < 0).any()):
        raise InputError(f"{src}: hard labels must be non-negative integers", "store labels as int64")
