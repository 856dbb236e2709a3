"""GLaD: a folder with images_best.pt only; labels are class-major, IPC images of each of 10 classes."""

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import atomic_torch_save, images_from, integer_pixels, load_tensors, torch_images

GLAD_CLASSES = 10


def read(path, options: dict):
    images, storage = images_from(load_tensors(path / "images_best.pt"), path / "images_best.pt")
    n, classes = images.shape[0], GLAD_CLASSES
    if n % classes:
        raise InputError(f"{path}: {n} GLaD images is not a multiple of {classes} classes",
                         "GLaD sets are class-major, IPC images per class; use the mtt layout with labels_best.pt")
    labels = np.repeat(np.arange(classes, dtype=np.int64), n // classes)
    return images, labels, {"storage": storage}, "unit" if integer_pixels(storage) else ENTRY.pixel_space


def write(dset, x, out):
    import torch

    target = out / dset.source.name
    target.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(torch_images(x, dset.extra.get("storage")), target / "images_best.pt")
    return target


def detect(probe) -> bool:
    return (probe.path / "images_best.pt").is_file()


ENTRY = Layout("glad", reads_folder=True, pixel_space="imagenet", expects="images_best.pt (MTT/EDF/GLaD)",
               read=read, write=write, detect=detect, order=1)
