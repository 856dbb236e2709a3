"""DM (and DSA/IDM): torch.save({'data': [[X, y], ...], ...}) with one [X, y] per experiment, ImageNet-normalised."""

import numpy as np

from diver_lite.errors import InputError
from diver_lite.layouts.layout import Layout
from diver_lite.layouts.tensors import (atomic_torch_save, describe, images_from, integer_pixels, labels_from,
                                       load_tensors, torch_images)


def read(path, options: dict):
    """DM saves one [X, y] per experiment (5 by default): all are read, concatenated, and written back split the
    same way; `experiment` K reads only entry K and writes the others back untouched."""
    experiment = options.get("experiment")
    obj = load_tensors(path)
    try:
        entries = list(obj["data"])
        pairs = [(e[0], e[1]) for e in entries]
    except (KeyError, IndexError, TypeError):
        raise InputError(f"{path} is not a DM set: expected {{'data': [[X, y], ...]}}, found {describe(obj)}",
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
    read = [images_from(x, path) for x, _ in pairs]
    images, storages = [x for x, _ in read], {str(s) for _, s in read}
    labels = [labels_from(y, path) for _, y in pairs]
    if len(storages) > 1:
        raise InputError(f"{path}: its {len(pairs)} experiments store their images in different types",
                         "recover one at a time with --experiment K")
    extra["storage"] = read[0][1]
    if len({x.shape[1:] for x in images}) > 1 or len({y.shape[1:] for y in labels}) > 1:
        raise InputError(f"{path}: its {len(pairs)} experiments differ in image or label shape",
                         "recover one at a time with --experiment K")
    extra["experiment_sizes"] = [len(x) for x in images]
    space = "unit" if integer_pixels(extra["storage"]) else ENTRY.pixel_space
    return np.concatenate(images), np.concatenate(labels), extra, space


def write(dset, x, out):
    import torch

    tx, ty = torch_images(x, dset.extra.get("storage")), torch.from_numpy(np.ascontiguousarray(dset.labels))
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
    return target


def detect(probe) -> bool:
    return isinstance(probe.content, dict) and "data" in probe.content


ENTRY = Layout("dm", reads_folder=False, pixel_space="imagenet", expects="dm (dict with 'data')", read=read,
               write=write, detect=detect, order=10, options=("experiment",))
