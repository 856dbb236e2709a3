"""Fashion-MNIST (Zalando SE, MIT licence), offline: Debian's dataset-fashion-mnist package, a folder with the same
IDX files, or the small subset vendored with diver-lite (100 train + 100 test images per class).

Images are used as 3-channel 32x32 (padded by 2, grey replicated), so every code path is the one DiT-XL/2 uses."""

import gzip
import zlib
from pathlib import Path

import numpy as np

from diver_lite.errors import InputError

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
SUBSET = Path(__file__).parents[2] / "assets" / "fashion_mnist_subset.npz"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
SPLITS = ("train", "val", "test")
# The validation split that chooses recovery defaults (benchmarks/fashion_mnist_sweep.sh), so the test split never
# does: up to 500 images of each class of the training split (a tenth of a class if that is fewer), seed 0.
# "train" stays the whole training split: the prior and the stage-1 sets were trained on it, the same for every
# configuration a sweep compares.
VAL_PER_CLASS, VAL_SEED = 500, 0


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip or plain): magic (0, 0, 0x08 = uint8, ndim), big-endian dims, then the data."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:   # gzip.BadGzipFile is an OSError; a cut-off gzip, EOFError
        raise InputError(f"{path} cannot be read ({type(e).__name__}: {e or 'truncated'})",
                         "the file is damaged: reinstall dataset-fashion-mnist or copy the IDX files again")
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise InputError(f"{path} is not a uint8 IDX file", "give the Fashion-MNIST IDX files")
    ndim = raw[3]
    try:
        dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    except ValueError:
        raise InputError(f"{path} is shorter than its header says", "the file is truncated: copy it again")


def checked(images: np.ndarray, labels: np.ndarray, paths) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, H, W] and labels [N] in 0..9, as many of each."""
    if images.ndim != 3 or min(images.shape) == 0:
        raise InputError(f"{paths[0]} holds an array of shape {images.shape}, not images [N, H, W]",
                         "give the image IDX file (idx3) of Fashion-MNIST")
    if labels.ndim != 1:
        raise InputError(f"{paths[1]} holds an array of shape {labels.shape}, not labels [N]",
                         "give the label IDX file (idx1) of Fashion-MNIST")
    if len(images) != len(labels):
        raise InputError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels",
                         "give an image file and the label file of the same split")
    if int(labels.max()) >= len(CLASSES):
        raise InputError(f"{paths[1]} has label {int(labels.max())}; Fashion-MNIST has {len(CLASSES)} classes "
                         "(0..9)", "give Fashion-MNIST's label file")
    return images, labels.astype(np.int64)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def validation_indices(labels: np.ndarray) -> np.ndarray:
    """Indices of the validation split within the training split (sorted)."""
    rng = np.random.default_rng(VAL_SEED)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:min(VAL_PER_CLASS, int((labels == c).sum()) // 10)]
             for c in range(len(CLASSES))]
    return np.sort(np.concatenate(picks))


def load(split: str = "train", root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(images uint8 [N, 28, 28], labels int64 [N], source) of "train", "val" (held out of train: see
    VAL_PER_CLASS) or "test". `root` None: Debian's package, else the vendored subset."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r} is not one of {SPLITS}")
    if split == "val":
        images, labels, source = load("train", root)
        keep = validation_indices(labels)
        return images[keep], labels[keep], f"{source}, validation ({len(keep)} of the training images)"
    if root is not None or DEBIAN_ROOT.is_dir():
        folder = Path(root) if root is not None else DEBIAN_ROOT
        paths = [_find(folder, stem) for stem in FILES[split]]
        if all(paths):
            images, labels = read_idx(paths[0]), read_idx(paths[1])
            return *checked(images, labels, paths), str(folder)
        if root is not None:
            raise InputError(f"{folder} lacks {FILES[split][0]}(.gz) or {FILES[split][1]}(.gz)",
                             "apt-get install dataset-fashion-mnist, or give a folder with the IDX files")
    with np.load(SUBSET) as z:
        return z[f"{split}_images"], z[f"{split}_labels"].astype(np.int64), f"vendored subset ({SUBSET.name})"


def to_images(u8: np.ndarray) -> np.ndarray:
    """uint8 [N, 28, 28] -> float32 [N, 3, 32, 32] in [0, 1]."""
    x = np.pad(u8.astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
    return np.repeat(x[:, None], 3, axis=1)


def make_subset(root: Path, per_class: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    """The vendored subset: `per_class` images of each class from each split, picked by a seeded permutation."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("train", "test"):
        images, labels, _ = load(split, root)
        picks = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(10)])
        out[f"{split}_images"], out[f"{split}_labels"] = images[picks], labels[picks].astype(np.uint8)
    return out
