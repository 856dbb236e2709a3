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


def images_from(obj, path: Path) -> np.ndarray:
    t = tensor(obj, path)
    check_memory(t.numel(), path)
    return t.float().numpy() if t.dtype.is_floating_point else t.numpy().astype(np.float32)


def labels_from(obj, path: Path) -> np.ndarray:
    t = tensor(obj, path)
    if t.ndim == 2:
        return t.float().numpy()
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
