"""NCFM: torch.save([X, y]) of 2x2 mosaics in [0, 1], each recovered as four images and reassembled."""

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import (atomic_torch_save, describe, images_from, is_tensor, labels_from,
                                       load_tensors, torch_images)


def read(path, options: dict):
    obj = load_tensors(path)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2):
        raise InputError(f"{path} is not an NCFM set: expected a list [X, y], found {describe(obj)}",
                         "name the right --layout")
    (images, storage), labels = images_from(obj[0], path), labels_from(obj[1], path)
    return images, labels, {"file": path.name, "container": type(obj).__name__, "storage": storage}, ENTRY.pixel_space


def write(dset, x, out):
    import torch

    tx, ty = torch_images(x, dset.extra.get("storage")), torch.from_numpy(np.ascontiguousarray(dset.labels))
    target = out / dset.extra.get("file", "ncfm_set.pt")
    atomic_torch_save([tx, ty] if dset.extra.get("container", "list") == "list" else (tx, ty), target)
    return target


def detect(probe) -> bool:
    obj = probe.content
    return isinstance(obj, (list, tuple)) and len(obj) == 2 and all(is_tensor(t) for t in obj)


ENTRY = Layout("ncfm", reads_folder=False, pixel_space="unit", expects="ncfm (list [X, y])", read=read, write=write,
               detect=detect, order=11, mosaic=True)
