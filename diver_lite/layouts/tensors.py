"""Reading untrusted tensor files safely (`torch.load(..., weights_only=True)`, memory-mapped, sizes checked before
anything is copied) and turning their tensors into numpy images and labels."""

import pickle
import zipfile
from pathlib import Path

import numpy as np

from diver_lite.errors import InputError, first_line
from diver_lite.layouts.files import atomic_write

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


def atomic_torch_save(obj, path: Path) -> None:
    import torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def is_tensor(obj) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "numpy")


def tensor(obj, path: Path):
    if not is_tensor(obj):
        raise InputError(f"{path} should hold a tensor, found {describe(obj)}", "check the layout")
    return obj.detach().cpu()


def images_from(obj, path: Path) -> tuple[np.ndarray, dict | None]:
    """(float32 images, storage): a float32 tensor as it is (storage None); another float one (float16, bfloat16,
    float64) as float32 with storage {"dtype", "float": True}, so that it is written back in its dtype; an integer
    one read as pixel values, divided by its range (storage_of) into [0, 1]. Boolean, complex and sparse tensors
    are refused."""
    import torch

    t = tensor(obj, path)
    if t.layout != torch.strided:
        raise InputError(f"{path}: the images are a sparse tensor ({t.layout})", "save them dense: x.to_dense()")
    check_memory(t.numel(), path)
    if t.dtype.is_floating_point and t.dtype != torch.float32:
        return t.float().numpy(), {"dtype": str(t.dtype).removeprefix("torch."), "float": True}
    return pixels(t.numpy(), path)


def integer_pixels(storage: dict | None) -> bool:
    """Were the images read as integer pixel values (rather than floats in a pixel space)?"""
    return bool(storage) and not storage.get("float")


def torch_images(x: np.ndarray, storage: dict | None):
    """The images to save as a tensor: in the float dtype they were read in (float16, bfloat16, float64), else
    as x is (float32, or the integers to_storage made)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.to(getattr(torch, storage["dtype"])) if storage and storage.get("float") else t


def storage_of(dtype: np.dtype, values: np.ndarray, source) -> dict | None:
    """None for float pixels; for integer pixels {"dtype", "scale"}: uint8 (and other integers within 0..255)
    scale 255, uint16 (and integers within 0..65535) scale 65535. Booleans, complex numbers and integers outside
    0..65535 are refused."""
    kind = np.dtype(dtype).kind
    if kind == "f":
        return None
    if kind == "b":
        raise InputError(f"{source}: the images are booleans", "store pixel values: uint8 0..255 or float")
    if kind == "c":
        raise InputError(f"{source}: the images are complex numbers", "store real pixel values (uint8 or float)")
    if kind not in "iu":
        raise InputError(f"{source}: images of type {dtype} are not pixel values", "store uint8 or float pixels")
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if np.dtype(dtype) == np.uint16 or (hi > 255 and hi <= 65535):
        scale = 65535
    else:
        scale = 255
    if lo < 0 or hi > scale:
        raise InputError(f"{source}: integer images span {lo}..{hi}, not pixel values (0..255 or 0..65535)",
                         "store uint8 0..255, uint16 0..65535, or float images in a stated pixel space")
    return {"dtype": str(np.dtype(dtype)), "scale": scale}


def pixels(values: np.ndarray, source) -> tuple[np.ndarray, dict | None]:
    """(float32 images, storage): integer pixels divided by their range into [0, 1]."""
    storage = storage_of(values.dtype, values, source)
    x = values.astype(np.float32)
    return (x / storage["scale"], storage) if storage else (x, None)


def to_storage(x: np.ndarray, storage: dict | None) -> np.ndarray:
    """[0, 1] images back to the integers they were read as (clipped, rounded), or x as it is for float sets."""
    if not integer_pixels(storage):
        return x
    return (np.clip(x, 0.0, 1.0) * storage["scale"]).round().astype(storage["dtype"])


def labels_from(obj, path: Path) -> np.ndarray:
    t = tensor(obj, path)
    if t.layout != __import__("torch").strided:
        raise InputError(f"{path}: the labels are a sparse tensor", "save them dense: y.to_dense()")
    if t.dtype.is_complex or t.dtype == __import__("torch").bool:
        raise InputError(f"{path}: labels of type {t.dtype}", "store hard labels as int64 or soft labels as float")
    if t.ndim == 2:
        soft = t.float().numpy()
        if not np.isfinite(soft).all():
            raise InputError(f"{path}: soft labels contain NaN or inf", "fix or drop those labels first")
        return soft
    if t.dtype.is_floating_point:
        raise InputError(f"{path}: hard labels must be integers, found {t.dtype}", "store labels as int64")
    return t.numpy().astype(np.int64)


def describe(obj) -> str:
    if is_tensor(obj) or isinstance(obj, np.ndarray):
        return f"{type(obj).__name__} of shape {tuple(obj.shape)}"
    if isinstance(obj, dict):
        return f"dict with keys {sorted(map(str, obj))[:6]}"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__} of {len(obj)} items"
    return type(obj).__name__
