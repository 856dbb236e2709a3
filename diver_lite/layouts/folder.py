"""Image folders: <class>/<image> (PNG, JPEG, BMP, WebP), 8-bit or 16-bit grey; the class is the sorted folder
index. Written back under the same names and depths."""

from pathlib import Path

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.files import image_files, listing, save_png
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import check_memory


def read(path: Path, options: dict):
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and image_files(p))
    if not classes:
        raise InputError(f"{path} has no <class>/<image> subfolders; found: {listing(path)}", "check the path")
    files_by_class = [image_files(path / name) for name in classes]
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


def write(dset, x, out):
    target = out / dset.source.name
    files = dset.extra.get("files") or [f"{int(label)}/{i:06d}.png" for i, label in enumerate(dset.hard_labels)]
    depths = dset.extra.get("depths") or [8] * len(files)
    for img, rel, depth in zip(x, files, depths):
        save_png(img, target / rel, "unit", depth)
    return target


def detect(probe) -> bool:
    return any(p.is_dir() and image_files(p) for p in probe.path.iterdir())


ENTRY = Layout("folder", reads_folder=True, pixel_space="unit", expects="<class>/<image> subfolders (image folder)",
               read=read, write=write, detect=detect, order=2)
