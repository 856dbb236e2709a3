"""Distilled-set readers and writers for the layouts of SPEC §1, detected or named.

A set is read into `DistilledSet` (numpy float32 images in a named pixel space, labels hard or soft) and written
back in the same layout, so the recovered set is a drop-in replacement. Files from others are untrusted: tensors
are loaded with `torch.load(..., weights_only=True)`, which refuses pickled code. torch is imported only for the
.pt layouts: npz and image folders are read and written with numpy and Pillow alone.
"""

import errno
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import InputError, StorageError, first_line
from .prepare import PIXEL_SPACES, is_pixel_space, space_warnings, to_unit

LAYOUTS = ("dm", "mtt", "ncfm", "glad", "folder", "npz")
FOLDER_LAYOUTS = ("mtt", "glad", "folder")
GLAD_CLASSES = 10
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Layouts whose tensors are ImageNet mean/std normalised (SPEC §1); NCFM is [0, 1]; images on disk are uint8.
DEFAULT_PIXEL_SPACE = {"dm": "imagenet", "mtt": "imagenet", "glad": "imagenet", "ncfm": "unit", "folder": "unit"}


@dataclass
class DistilledSet:
    images: np.ndarray            # [N, C, H, W] float32, C in {1, 3}, H == W; NCFM: the 2x2 mosaics
    labels: np.ndarray            # [N] int64, or soft [N, num_classes] float32
    layout: str                   # one of LAYOUTS
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


# ----------------------------------------------------------------------------------------------------- reading

# A set is held about three times as float32 (the input, the recovered copy, the output being written).
MEMORY_FACTOR = 3


def available_memory() -> int | None:
    """Bytes the kernel says a new allocation can take (Linux MemAvailable); None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(float32_values: int, source) -> None:
    """Refuse, before allocating, a set whose float32 copies would not fit in the available memory."""
    need, avail = float32_values * 4 * MEMORY_FACTOR, available_memory()
    if avail is not None and need > avail:
        raise InputError(f"{source}: the set needs about {need / 2**30:.1f} GiB of memory as float32, "
                         f"{avail / 2**30:.1f} GiB are available",
                         "split it into smaller sets of the same layout and recover them one by one")


def load_tensors(path: Path):
    """torch.load restricted to tensors and plain containers; anything else is refused, never executed.
    Memory-mapped where the file allows it, so sizes can be checked before anything is copied."""
    import torch

    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except OSError as e:
        raise InputError(f"{path} cannot be read: {e.strerror}", "check the path and its permissions")
    if magic != b"PK" and magic[:1] != b"\x80":   # torch.save's zip, or the legacy pickle stream
        raise InputError(f"{path} is not a readable torch file (neither torch.save's zip nor its legacy format)",
                         "check that the file is complete (not truncated) and was written by torch.save")
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as e:
        first = first_line(e)
        raise InputError(f"{path} holds pickled objects that are not tensors; refused without running them "
                         f"({first[:160]})", "re-save the set with plain tensors, lists and dicts")
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"{path} is not a readable torch file: {first_line(e, 160)}",
                         "check that the file is complete (not truncated) and was written by torch.save")


def detect_layout(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", "give the path of the distilled set (a .pt, .npz or folder)")
    if path.is_dir():
        if (path / "images_best.pt").is_file():
            return "mtt" if (path / "labels_best.pt").is_file() else "glad"
        if any(p.is_dir() and _image_files(p) for p in path.iterdir()):
            return "folder"
        raise InputError(f"{path} is a folder with neither images_best.pt (MTT/EDF/GLaD) nor <class>/<image> "
                         f"subfolders (image folder); found: {_listing(path)}", "point at the set itself")
    if path.suffix == ".npz":
        return "npz"
    obj = load_tensors(path)
    if isinstance(obj, dict) and "data" in obj:
        return "dm"
    if isinstance(obj, (list, tuple)) and len(obj) == 2 and all(_is_tensor(t) for t in obj):
        return "ncfm"
    raise InputError(f"{path} matches no layout: tried dm (dict with 'data'), ncfm (list [X, y]); found "
                     f"{_describe(obj)}", "name the layout with --layout or convert the file")


def read_set(path: str | os.PathLike, layout: str | None = None, pixel_space: str | None = None,
             experiment: int | None = None, zca: str | os.PathLike | None = None) -> DistilledSet:
    """Read a distilled set. `layout` None: detected. `pixel_space` None: the layout's convention (a warning
    when the values contradict it); "zca": a ZCA-whitened set, which needs the whitening file `zca` and is then
    read in the layout's normalised space. `experiment`: for a DM file with several, only that one."""
    path = Path(path)
    layout = layout or detect_layout(path)
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}", f"use one of {', '.join(LAYOUTS)}")
    if not path.exists():
        raise InputError(f"{path} does not exist", "give the path of the distilled set")
    if path.is_dir() != (layout in FOLDER_LAYOUTS):
        kind = "folder" if layout in FOLDER_LAYOUTS else "file"
        raise InputError(f"layout {layout} reads a {kind}, but {path} is not one", "check --layout and the path")
    if experiment is not None and layout != "dm":
        raise InputError(f"--experiment applies to DM files, not to the {layout} layout", "drop --experiment")
    reader = {"dm": lambda p: _read_dm(p, experiment), "mtt": _read_mtt, "glad": _read_glad, "ncfm": _read_ncfm,
              "folder": _read_folder, "npz": _read_npz}[layout]
    if (pixel_space == "zca") != (zca is not None):
        raise InputError("a ZCA-whitened set cannot be recovered without its whitening" if zca is None else
                         "--zca was given for a set not declared ZCA-whitened",
                         "pass both --pixel-space zca and --zca WHITENING.npz ('mean' [D], 'transform' [D, D]), or "
                         "re-save the set un-whitened")
    images, labels, extra, space = reader(path)
    if zca is not None:
        from .zca import read_whitening, unwhiten

        extra["zca"] = read_whitening(Path(zca), images.shape[1:])
        images = unwhiten(images, *extra["zca"])
    space = space if pixel_space in (None, "zca") else pixel_space
    if not is_pixel_space(space):
        raise InputError(f"unknown pixel space {space!r}", f"use one of {', '.join(PIXEL_SPACES)}")
    dset = DistilledSet(images, labels, layout, space, path, extra)
    validate_set(dset)
    if pixel_space is None:
        dset.warnings = space_warnings(images, space)
    return dset


def validate_set(dset: DistilledSet) -> None:
    x, y, src = dset.images, dset.labels, dset.source
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise InputError(f"{src}: images must be [N, C, H, W], found {_describe(x)}", "check the layout")
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
        raise InputError(f"{src}: labels must be [N] or soft [N, C] with N = {n}, found {_describe(y)}",
                         "give one label per image")
    if y.ndim == 1 and (y.dtype.kind == "f" or (y < 0).any()):
        raise InputError(f"{src}: hard labels must be non-negative integers", "store labels as int64")


def _read_dm(path: Path, experiment: int | None = None):
    """DM saves one [X, y] per experiment (5 by default): all are read, concatenated, and written back split the
    same way; `experiment` K reads only entry K and writes the others back untouched."""
    obj = load_tensors(path)
    try:
        entries = list(obj["data"])
        pairs = [(e[0], e[1]) for e in entries]
    except (KeyError, IndexError, TypeError):
        raise InputError(f"{path} is not a DM set: expected {{'data': [[X, y], ...]}}, found {_describe(obj)}",
                         "name the right --layout")
    if not pairs:
        raise InputError(f"{path}: 'data' holds no experiment", "give a DM set with at least one [X, y]")
    extra = {"file": path.name, "keys": {k: v for k, v in obj.items() if k != "data"}}
    if experiment is not None:
        if not 0 <= experiment < len(pairs):
            raise InputError(f"{path} holds {len(pairs)} experiment(s); --experiment {experiment} does not exist",
                             f"give 0..{len(pairs) - 1}")
        extra.update(experiment=experiment, entries=entries)
        pairs = [pairs[experiment]]
    images = [_images(x, path) for x, _ in pairs]
    labels = [_labels(y, path) for _, y in pairs]
    if len({x.shape[1:] for x in images}) > 1 or len({y.shape[1:] for y in labels}) > 1:
        raise InputError(f"{path}: its {len(pairs)} experiments differ in image or label shape",
                         "recover one at a time with --experiment K")
    extra["experiment_sizes"] = [len(x) for x in images]
    return np.concatenate(images), np.concatenate(labels), extra, DEFAULT_PIXEL_SPACE["dm"]


def _read_mtt(path: Path):
    images = _images(load_tensors(path / "images_best.pt"), path / "images_best.pt")
    labels = _labels(load_tensors(path / "labels_best.pt"), path / "labels_best.pt")
    return images, labels, {}, DEFAULT_PIXEL_SPACE["mtt"]


def _read_glad(path: Path):
    images = _images(load_tensors(path / "images_best.pt"), path / "images_best.pt")
    # GLaD stores no labels: class-major, IPC images of each of the 10 classes of an ImageNet subset (SPEC §1).
    n, classes = images.shape[0], GLAD_CLASSES
    if n % classes:
        raise InputError(f"{path}: {n} GLaD images is not a multiple of {classes} classes",
                         "GLaD sets are class-major, IPC images per class; use the mtt layout with labels_best.pt")
    labels = np.repeat(np.arange(classes, dtype=np.int64), n // classes)
    return images, labels, {}, DEFAULT_PIXEL_SPACE["glad"]


def _read_ncfm(path: Path):
    obj = load_tensors(path)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2):
        raise InputError(f"{path} is not an NCFM set: expected a list [X, y], found {_describe(obj)}",
                         "name the right --layout")
    images, labels = _images(obj[0], path), _labels(obj[1], path)
    return images, labels, {"file": path.name, "container": type(obj).__name__}, "unit"


def _read_folder(path: Path):
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and _image_files(p))
    if not classes:
        raise InputError(f"{path} has no <class>/<image> subfolders; found: {_listing(path)}", "check the path")
    files_by_class = [_image_files(path / name) for name in classes]
    pixels = 0
    for f in (f for group in files_by_class for f in group):
        try:
            with Image.open(f) as im:  # reads the header only
                pixels += im.size[0] * im.size[1] * 3
        except Image.DecompressionBombError:
            raise InputError(f"{f} is larger than Pillow's safety limit of {2 * Image.MAX_IMAGE_PIXELS} pixels "
                             "(a decompression bomb or a huge image)", "distilled images are small: remove it")
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"{f} is not a readable image: {e}", "remove or re-save it")
    check_memory(pixels, path)
    images, labels, files, depths = [], [], [], []
    for label, group in enumerate(files_by_class):
        for f in group:
            try:
                with Image.open(f) as im:
                    arr, depth = _pixels(im)
            except (UnidentifiedImageError, OSError) as e:
                raise InputError(f"{f} is not a readable image: {e}", "remove or re-save it")
            images.append(arr)
            labels.append(label)
            files.append(f.relative_to(path).as_posix())
            depths.append(depth)
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) > 1:
        raise InputError(f"{path}: images differ in size {sorted(sizes)[:3]}", "resize them to one size first")
    return np.stack(images), np.array(labels, dtype=np.int64), {"classes": classes, "files": files,
                                                                 "depths": depths}, "unit"


def _pixels(im) -> tuple[np.ndarray, int]:
    """[3, H, W] float32 in [0, 1] and the bit depth: 16-bit grey PNGs at their depth (Pillow's RGB conversion
    would clip them to 255), everything else through RGB at 8 bits."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(im).astype(np.float32) / 65535.0
        return np.repeat(grey[None], 3, axis=0), 16
    return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0, 8


def _npz_shape(path: Path, name: str) -> tuple | None:
    """The declared shape of array `name` in an npz, from its header alone."""
    with zipfile.ZipFile(path) as zf:
        if f"{name}.npy" not in zf.namelist():
            return None
        with zf.open(f"{name}.npy") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return reader(f)[0]


def _read_npz(path: Path):
    try:
        shape = _npz_shape(path, "images")
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"{path} is not a readable npz: {str(e)[:160]}", "save with numpy.savez")
    if shape is not None:
        check_memory(int(np.prod(shape, dtype=np.float64)), path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"{path} is not a readable npz (object arrays are refused): {str(e)[:160]}",
                         "save with numpy.savez and plain numeric arrays")
    if "images" not in arrays or "labels" not in arrays:
        raise InputError(f"{path} must hold 'images' [N,H,W,3] and 'labels' [N]; found keys {sorted(arrays)}",
                         "rename the arrays")
    imgs = arrays["images"]
    if imgs.dtype.kind not in "buif" or arrays["labels"].dtype.kind not in "buif":
        raise InputError(f"{path}: 'images' and 'labels' must be numeric, found {imgs.dtype} and "
                         f"{arrays['labels'].dtype}", "store pixel values and labels as numbers")
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if imgs.ndim != 4 or imgs.shape[-1] not in (1, 3):
        raise InputError(f"{path}: 'images' must be [N, H, W, 3], found shape {imgs.shape}", "store channels last")
    dtype = str(imgs.dtype)
    x = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)).astype(np.float32)
    if imgs.dtype == np.uint8:
        x, space = x / 255.0, "unit"
    elif "pixel_space" in arrays:
        space = str(arrays["pixel_space"])
    else:
        space = detect_pixel_space(x)
    labels = arrays["labels"]
    if labels.ndim == 1:
        if labels.dtype.kind not in "iu":
            raise InputError(f"{path}: 'labels' must be integers", "store labels as int64")
        labels = labels.astype(np.int64)
    else:
        labels = labels.astype(np.float32)
    extra = {"file": path.name, "dtype": dtype, "channels_last": True,
             "other": {k: v for k, v in arrays.items() if k not in ("images", "labels")}}
    return x, labels, extra, space


def detect_pixel_space(x: np.ndarray) -> str:
    """[0, 1] -> unit, [-1, 1] -> symmetric, anything wider -> ImageNet mean/std normalised."""
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return "unit"
    if lo >= -1.0 and hi <= 1.0:
        return "symmetric"
    return "imagenet"


# ----------------------------------------------------------------------------------------------------- writing

def write_set(dset: DistilledSet, out: Path) -> Path:
    """Write `dset` in its own layout under folder `out`; returns the path of the set. Every file is written to
    a temporary name and renamed, so a crash never leaves a half-written set."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x, y = np.ascontiguousarray(dset.images, dtype=np.float32), dset.labels
    if "zca" in dset.extra:                       # back to the whitened space it was read from
        from .zca import whiten

        x = whiten(x, *dset.extra["zca"])
    if dset.layout in ("dm", "ncfm", "mtt", "glad"):
        import torch

        tx, ty = torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(y))
    if dset.layout == "dm":
        target = out / dset.extra.get("file", "dm_set.pt")
        obj = dict(dset.extra.get("keys", {}))
        bounds = np.cumsum([0] + dset.extra.get("experiment_sizes", [len(x)]))
        data = [[tx[a:b], ty[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
        if dset.extra.get("experiment") is not None:        # the other experiments go back as they were read
            data = [list(e) for e in dset.extra["entries"]]
            data[dset.extra["experiment"]] = [tx, ty]
        obj["data"] = data
        obj["res"] = x.shape[-1]
        atomic_torch_save(obj, target)
    elif dset.layout == "ncfm":
        target = out / dset.extra.get("file", "ncfm_set.pt")
        container = [tx, ty] if dset.extra.get("container", "list") == "list" else (tx, ty)
        atomic_torch_save(container, target)
    elif dset.layout in ("mtt", "glad"):
        target = out / dset.source.name
        target.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(tx, target / "images_best.pt")
        if dset.layout == "mtt":
            atomic_torch_save(ty, target / "labels_best.pt")
    elif dset.layout == "folder":
        target = out / dset.source.name
        files = dset.extra.get("files") or [f"{int(l)}/{i:06d}.png" for i, l in enumerate(dset.hard_labels)]
        depths = dset.extra.get("depths") or [8] * len(files)
        for img, rel, depth in zip(x, files, depths):
            save_png(img, target / rel, "unit", depth)
    elif dset.layout == "npz":
        target = out / dset.extra.get("file", "set.npz")
        arr = x.transpose(0, 2, 3, 1)
        if dset.extra.get("dtype") == "uint8":
            arr = (arr.clip(0, 1) * 255.0).round().astype(np.uint8)
        else:
            arr = arr.astype(dset.extra.get("dtype", "float32"))
        arrays = dict(dset.extra.get("other", {}))
        arrays.update(images=arr, labels=y)
        atomic_write(target, lambda tmp: savez(tmp, arrays), suffix=".npz")
    else:
        raise InputError(f"cannot write layout {dset.layout!r}", f"use one of {', '.join(LAYOUTS)}")
    return target


def to_display(img: np.ndarray, pixel_space: str) -> np.ndarray:
    """[C, H, W] in a pixel space -> [H, W, 3] uint8 for a PNG. Values outside the range are clipped."""
    u = np.clip(to_unit(img[None].astype(np.float32), pixel_space)[0], 0, 1)
    if u.shape[0] == 1:
        u = np.repeat(u, 3, axis=0)
    return (u * 255.0).round().astype(np.uint8).transpose(1, 2, 0)


def save_png(img: np.ndarray, path: Path, pixel_space: str, depth: int = 8) -> None:
    """8-bit RGB (or grey), or, for `depth` 16, a 16-bit grey PNG (the channel mean), as it was read."""
    from PIL import Image

    if depth == 16:
        grey = np.clip(to_unit(img[None], pixel_space)[0].mean(axis=0), 0, 1)
        arr = (grey * 65535.0).round().astype(np.uint16)
    else:
        arr = to_display(img, pixel_space)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format=fmt), suffix=path.suffix)


def atomic_torch_save(obj, path: Path) -> None:
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def savez(path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez for any array names: np.savez(file, **arrays) takes 'file' and 'allow_pickle' as its own
    arguments, so an array of that name would be lost. Same format (an uncompressed zip of .npy files)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write, suffix: str = "") -> None:
    """Write through `write(tmp_path)` next to `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())       # mkstemp makes 0600; a written file follows the umask
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise StorageError(f"cannot write {path}: {e.strerror}", "free disk space or choose another -o; "
                               "finished images are kept, so --resume goes on from there") from e
        raise


# ----------------------------------------------------------------------------------------------------- helpers

def _is_tensor(obj) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "numpy")


def _tensor(obj, path: Path):
    if not _is_tensor(obj):
        raise InputError(f"{path} should hold a tensor, found {_describe(obj)}", "check the layout")
    return obj.detach().cpu()


def _images(obj, path: Path) -> np.ndarray:
    t = _tensor(obj, path)
    check_memory(t.numel(), path)
    return t.float().numpy() if t.dtype.is_floating_point else t.numpy().astype(np.float32)


def _labels(obj, path: Path) -> np.ndarray:
    t = _tensor(obj, path)
    if t.ndim == 2:
        return t.float().numpy()
    if t.dtype.is_floating_point:
        raise InputError(f"{path}: hard labels must be integers, found {t.dtype}", "store labels as int64")
    return t.numpy().astype(np.int64)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _listing(path: Path, limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "") if names else "nothing"


def _describe(obj) -> str:
    if _is_tensor(obj) or isinstance(obj, np.ndarray):
        return f"{type(obj).__name__} of shape {tuple(obj.shape)}"
    if isinstance(obj, dict):
        return f"dict with keys {sorted(map(str, obj))[:6]}"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__} of {len(obj)} items"
    return type(obj).__name__
