"""npz: numpy arrays 'images' [N, H, W, C] (uint8, or float with an optional 'pixel_space') and 'labels'; other
arrays are carried through. Read and written without torch."""

import zipfile
from pathlib import Path

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.files import atomic_write, savez
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import check_memory, pixels


def npz_shape(path: Path, name: str) -> tuple | None:
    """The declared shape of array `name` in an npz, from its header alone."""
    with zipfile.ZipFile(path) as zf:
        if f"{name}.npy" not in zf.namelist():
            return None
        with zf.open(f"{name}.npy") as f:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return reader(f)[0]


def read(path: Path, options: dict):
    try:
        shape = npz_shape(path, "images")
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
    if imgs.dtype.kind not in "buifc" or arrays["labels"].dtype.kind not in "buif":
        raise InputError(f"{path}: 'images' and 'labels' must be numeric, found {imgs.dtype} and "
                         f"{arrays['labels'].dtype}", "store pixel values and labels as numbers")
    if imgs.ndim == 3:
        imgs = imgs[..., None]
    if imgs.ndim != 4 or imgs.shape[-1] not in (1, 3):
        raise InputError(f"{path}: 'images' must be [N, H, W, 3], found shape {imgs.shape}", "store channels last")
    dtype = str(imgs.dtype)
    x, storage = pixels(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)), path)
    if storage:
        space = "unit"
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
        if not np.isfinite(labels).all():
            raise InputError(f"{path}: soft labels contain NaN or inf", "fix or drop those labels first")
    extra = {"file": path.name, "dtype": dtype, "channels_last": True, "storage": storage,
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


def write(dset, x, out):
    target = out / dset.extra.get("file", "set.npz")
    arr = x.transpose(0, 2, 3, 1)          # integer sets come here already in their dtype (registry.write_set)
    arr = arr if dset.extra.get("storage") else arr.astype(dset.extra.get("dtype", "float32"))
    arrays = dict(dset.extra.get("other", {}))
    arrays.update(images=arr, labels=dset.labels)
    atomic_write(target, lambda tmp: savez(tmp, arrays), suffix=".npz")
    return target


ENTRY = Layout("npz", reads_folder=False, pixel_space="unit", expects="npz ('images', 'labels')", read=read,
               write=write, detect=lambda probe: True, order=5, suffixes=(".npz",))
