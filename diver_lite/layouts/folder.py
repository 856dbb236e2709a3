"""Image folders: <class>/<image> (PNG, JPEG, BMP, WebP), 8-bit, or 16-bit grey or RGB PNGs; the class is the
sorted folder index. Written back under the same names and depths. Every class folder must hold images this
layout reads: an empty one, or one of TIFF/GIF files only, is refused rather than dropped (dropping it would
renumber every later class)."""

from pathlib import Path

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts import png16
from diver_lite.layouts.files import IMAGE_EXTENSIONS, image_files, listing, save_png
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import check_memory


def read(path: Path, options: dict):
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in class_folders(path))
    if not classes:
        raise InputError(f"{path} has no <class>/<image> subfolders; found: {listing(path)}", "check the path")
    for name in classes:
        _check_class_folder(path / name)
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
                    arr, depth = _pixels(im, f)
            except (UnidentifiedImageError, OSError, png16.PngError) as e:
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


UNREAD_IMAGES = (".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".ico", ".heic", ".avif", ".jp2")


def class_folders(path: Path) -> list[Path]:
    """The class folders of an image folder: its subfolders, hidden ones (such as .diver-lite) aside."""
    return [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _check_class_folder(folder: Path) -> None:
    """Refuse a class folder that would be read as holding no image, or as fewer images than it has."""
    unread = sorted({p.suffix.lower() for p in folder.iterdir() if p.is_file() and p.suffix.lower() in UNREAD_IMAGES})
    if unread:
        raise InputError(f"class folder {folder} holds {'/'.join(unread)} images, which this layout does not read "
                         f"(it reads {', '.join(IMAGE_EXTENSIONS)})", "convert them to PNG")
    if not image_files(folder):
        what = "is empty" if not any(folder.iterdir()) else f"holds no image ({listing(folder)})"
        raise InputError(f"class folder {folder} {what}: every subfolder is a class",
                         "add its images, or move the folder out (the classes are the sorted subfolders)")


def _pixels(im, path: Path) -> tuple[np.ndarray, int]:
    """[3, H, W] float32 in [0, 1] and the bits per pixel: 16-bit PNGs at their depth, 16 (grey) or 48 (RGB;
    Pillow would read them at 8 bits), everything else through RGB at 8 bits."""
    if im.format == "PNG" and (png16.header(path) or (0,))[0] == 16:
        samples = png16.read(path).astype(np.float32).transpose(2, 0, 1) / 65535.0
        return (np.repeat(samples, 3, axis=0), 16) if len(samples) == 1 else (samples, 48)
    return np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0, 8


def write(dset, x, out):
    target = out / dset.source.name
    files = dset.extra.get("files") or [f"{int(label)}/{i:06d}.png" for i, label in enumerate(dset.hard_labels)]
    depths = dset.extra.get("depths") or [8] * len(files)
    for img, rel, depth in zip(x, files, depths):
        save_png(img, target / rel, "unit", depth)
    return target


def detect(probe) -> bool:
    """Some subfolder holds images (read or not): the folder is meant as an image folder."""
    return any(image_files(p) or any(q.suffix.lower() in UNREAD_IMAGES for q in p.iterdir())
               for p in class_folders(probe.path))


ENTRY = Layout("folder", reads_folder=True, pixel_space="unit", expects="<class>/<image> subfolders (image folder)",
               read=read, write=write, detect=detect, order=2)
