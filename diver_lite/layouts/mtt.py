"""MTT, EDF, DATM: a folder with images_best.pt and labels_best.pt, ImageNet-normalised."""

import numpy as np

from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import (atomic_torch_save, images_from, integer_pixels, labels_from, load_tensors,
                                       torch_images)


def read(path, options: dict):
    images, storage = images_from(load_tensors(path / "images_best.pt"), path / "images_best.pt")
    labels = labels_from(load_tensors(path / "labels_best.pt"), path / "labels_best.pt")
    return images, labels, {"storage": storage}, "unit" if integer_pixels(storage) else ENTRY.pixel_space


def write(dset, x, out):
    import torch

    target = out / dset.source.name
    target.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(torch_images(x, dset.extra.get("storage")), target / "images_best.pt")
    atomic_torch_save(torch.from_numpy(np.ascontiguousarray(dset.labels)), target / "labels_best.pt")
    return target


def detect(probe) -> bool:
    return (probe.path / "images_best.pt").is_file() and (probe.path / "labels_best.pt").is_file()


ENTRY = Layout("mtt", reads_folder=True, pixel_space="imagenet", expects="images_best.pt (MTT/EDF/GLaD)",
               read=read, write=write, detect=detect, order=0)
