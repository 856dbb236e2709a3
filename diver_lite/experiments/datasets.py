"""Training data for train-prior, distill and evaluate: Fashion-MNIST (the default) or a user's image folder
(<class>/<image>, any number of classes, square images up to 64² by default)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diver_lite.errors import InputError

MAX_SIZE = 64          # larger images make the small prior and the students slow on a CPU; --max-size raises it
MULTIPLE = 8           # the prior's VAE halves twice and the DiT takes 2x2 patches: sizes pad up to a multiple of 8


@dataclass
class LabelledImages:
    images: np.ndarray    # float32 [N, 3, S, S] in [0, 1], S a multiple of 8
    labels: np.ndarray    # int64 [N]
    classes: list         # class names, index = label
    source: str           # where they came from (for cards and reports)
    kind: str             # "fashion-mnist" | "folder"
    original_size: int    # the images' size before padding

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def size(self) -> int:
        return self.images.shape[-1]


def is_image_folder(path: Path | None) -> bool:
    """What `diver-lite recover` would read as the image-folder layout (<class>/<image> subfolders), or a folder of
    subfolders without IDX files (then read as one, so that empty class folders are named as such)."""
    from diver_lite.layouts.folder import class_folders
    from diver_lite.layouts.layout import Probe
    from diver_lite.layouts.registry import get_layout

    if path is None or not Path(path).is_dir():
        return False
    if get_layout("folder").detect(Probe(Path(path))):
        return True
    idx = any("idx" in p.name for p in Path(path).iterdir() if p.is_file())
    return not idx and bool(class_folders(Path(path)))


def load_images(data: Path | None, split: str = "train", max_size: int = MAX_SIZE) -> LabelledImages:
    """`data` None or a folder of Fashion-MNIST IDX files: that split of Fashion-MNIST (3 x 32 x 32). An image
    folder: its images and classes (the split is the folder itself)."""
    if not is_image_folder(data):
        from diver_lite.experiments.fashion_mnist import data as fm

        images, labels, source = fm.load(split, data)
        return LabelledImages(fm.to_images(images), labels, list(fm.CLASSES), source, "fashion-mnist", 28)
    return _folder(Path(data), max_size)


def _folder(path: Path, max_size: int) -> LabelledImages:
    from diver_lite.layouts.registry import get_layout

    images, labels, extra, _ = get_layout("folder").read(path, {})
    n, _, h, w = images.shape
    if h != w:
        raise InputError(f"{path}: images are {h}x{w}, not square", "crop or pad them to a square first")
    if h > max_size:
        raise InputError(f"{path}: images are {h}x{w}, larger than {max_size}x{max_size}",
                         f"resize them (e.g. to {max_size}x{max_size}), or pass --max-size {h} (slower)")
    if h < 8:
        raise InputError(f"{path}: images are {h}x{w}", "images must be at least 8x8")
    classes = extra["classes"]
    if len(classes) < 2:
        raise InputError(f"{path} holds one class ({classes[0]})", "give at least two <class>/ subfolders")
    counts = np.bincount(labels, minlength=len(classes))
    pad = (-h) % MULTIPLE
    if pad:   # edge-replicated, split around the image as Fashion-MNIST's 28 -> 32
        lo = pad // 2
        images = np.pad(images, ((0, 0), (0, 0), (lo, pad - lo), (lo, pad - lo)), mode="edge")
    source = f"{path} ({n} images, {len(classes)} classes, {min(counts)}-{max(counts)} per class, {h}x{w})"
    return LabelledImages(images.astype(np.float32), labels, list(classes), source, "folder", h)


def held_out(data: LabelledImages, fraction: float = 0.1, seed: int = 0) -> tuple[LabelledImages, LabelledImages]:
    """(train, test): `fraction` of each class held out (at least one image, when the class has two or more)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(data.labels), bool)
    for c in range(data.num_classes):
        idx = np.flatnonzero(data.labels == c)
        k = min(len(idx) - 1, max(1, round(fraction * len(idx))))
        test[rng.permutation(idx)[:max(k, 0)]] = True

    def part(mask, what: str) -> LabelledImages:
        return LabelledImages(data.images[mask], data.labels[mask], data.classes, f"{data.source}, {what}",
                              data.kind, data.original_size)

    return part(~test, f"{100 - round(100 * fraction)} % kept for training"), \
        part(test, f"{round(100 * fraction)} % held out per class")
