"""Writing files so that a crash never leaves a half-written one (atomic_write), and images as PNGs."""

import errno
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from diver_lite.core.prepare import to_unit
from diver_lite.errors import StorageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def to_display(img: np.ndarray, pixel_space: str) -> np.ndarray:
    """[C, H, W] in a pixel space -> [H, W, 3] uint8 for a PNG. Values outside the range are clipped."""
    u = np.clip(to_unit(img[None].astype(np.float32), pixel_space)[0], 0, 1)
    if u.shape[0] == 1:
        u = np.repeat(u, 3, axis=0)
    return (u * 255.0).round().astype(np.uint8).transpose(1, 2, 0)


def save_png(img: np.ndarray, path: Path, pixel_space: str, depth: int = 8) -> None:
    """8-bit RGB (or grey), or, for `depth` 16, a 16-bit grey PNG (the channel mean), for `depth` 48 a 16-bit
    RGB PNG, as it was read."""
    from PIL import Image

    if depth == 48:
        from diver_lite.layouts import png16

        unit = np.clip(to_unit(img[None].astype(np.float32), pixel_space)[0], 0, 1)
        samples = (unit * 65535.0).round().astype(np.uint16).transpose(1, 2, 0)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(png16.encode(samples)), suffix=path.suffix)
        return
    if depth == 16:
        grey = np.clip(to_unit(img[None], pixel_space)[0].mean(axis=0), 0, 1)
        arr = (grey * 65535.0).round().astype(np.uint16)
    else:
        arr = to_display(img, pixel_space)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP"}.get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format=fmt), suffix=path.suffix)


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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as e:
        raise StorageError(f"cannot write {path}: {e.strerror}", "choose a writable -o folder") from e
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
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG,
                                                  errno.EACCES):
            raise StorageError(f"cannot write {path}: {e.strerror}", "free disk space (or raise the file-size "
                               "limit) or choose another -o; finished work is kept, so --resume goes on from "
                               "there") from e
        if isinstance(e, RuntimeError) and any(w in str(e) for w in ("write", "inline_container")):  # torch.save
            raise StorageError(f"cannot write {path}: the file could not be written whole (disk full or a "
                               "file-size limit)", "free disk space or choose another -o") from e
        raise


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def listing(path: Path, limit: int = 5) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "") if names else "nothing"
