"""The layouts (one file each in layouts/, discovered), and reading and writing a set in any of them."""

import os
from pathlib import Path

import numpy as np

from diver_lite.core.prepare import PIXEL_SPACES, is_pixel_space, space_warnings
from diver_lite.errors import InputError
from diver_lite.layouts.distilled_set import DistilledSet, validate_set
from diver_lite.layouts.files import listing
from diver_lite.layouts.layout import Layout, Probe
from diver_lite.layouts.tensors import describe, integer_pixels, to_storage
from diver_lite.registry import discover

REGISTRY: dict[str, Layout] = {layout.name: layout for layout in discover("diver_lite.layouts")}
LAYOUTS = tuple(REGISTRY)
DEFAULT_PIXEL_SPACE = {name: layout.pixel_space for name, layout in REGISTRY.items()}


def get_layout(name: str) -> Layout:
    if name not in REGISTRY:
        raise InputError(f"unknown layout {name!r}", f"use one of {', '.join(LAYOUTS)}")
    return REGISTRY[name]


def detect_layout(path: Path) -> str:
    """The first layout (in their detection order) that recognises `path`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist", "give the path of the distilled set (a .pt, .npz or folder)")
    probe = Probe(path)
    candidates = [layout for layout in REGISTRY.values() if layout.detect and layout.reads_folder == path.is_dir()
                  and (not layout.suffixes or path.suffix.lower() in layout.suffixes)]
    for layout in candidates:
        if layout.detect(probe):
            return layout.name
    tried = list(dict.fromkeys(layout.expects for layout in candidates))
    if path.is_dir():
        raise InputError(f"{path} is a folder with neither {' nor '.join(tried)}; found: {listing(path)}",
                         "point at the set itself")
    raise InputError(f"{path} matches no layout: tried {', '.join(tried)}; "
                     f"found {describe(probe.content)}", "name the layout with --layout or convert the file")


def read_set(path: str | os.PathLike, layout: str | None = None, pixel_space: str | None = None,
             experiment: int | None = None, zca: str | os.PathLike | None = None) -> DistilledSet:
    """Read a distilled set. `layout` None: detected. `pixel_space` None: the layout's convention (a warning
    when the values contradict it); "zca": a ZCA-whitened set, which needs the whitening file `zca` and is then
    read in the layout's normalised space. `experiment`: for a DM file with several, only that one."""
    path = Path(path)
    kind = get_layout(layout or detect_layout(path))
    if not path.exists():
        raise InputError(f"{path} does not exist", "give the path of the distilled set")
    if path.is_dir() != kind.reads_folder:
        what = "folder" if kind.reads_folder else "file"
        raise InputError(f"layout {kind.name} reads a {what}, but {path} is not one", "check --layout and the path")
    if experiment is not None and "experiment" not in kind.options:
        raise InputError(f"--experiment applies to DM files, not to the {kind.name} layout", "drop --experiment")
    if (pixel_space == "zca") != (zca is not None):
        raise InputError("a ZCA-whitened set cannot be recovered without its whitening" if zca is None else
                         "--zca was given for a set not declared ZCA-whitened",
                         "pass both --pixel-space zca and --zca WHITENING.npz ('mean' [D], 'transform' [D, D]), or "
                         "re-save the set un-whitened")
    images, labels, extra, space = kind.read(path, {"experiment": experiment})
    if zca is not None:
        from diver_lite.core.zca import read_whitening, unwhiten

        extra["zca"] = read_whitening(Path(zca), images.shape[1:])
        images = unwhiten(images, *extra["zca"])
    if integer_pixels(extra.get("storage")) and pixel_space not in (None, "unit"):
        raise InputError(f"{path} stores integer pixel values ({extra['storage']['dtype']}); --pixel-space "
                         f"{pixel_space} cannot apply to them", "drop --pixel-space: integers are read as pixels")
    space = space if pixel_space in (None, "zca") else pixel_space
    if not is_pixel_space(space):
        raise InputError(f"unknown pixel space {space!r}", f"use one of {', '.join(PIXEL_SPACES)}")
    dset = DistilledSet(images, labels, kind.name, space, path, extra)
    validate_set(dset)
    if pixel_space is None:
        dset.warnings = space_warnings(images, space)
    return dset


def write_set(dset: DistilledSet, out: Path) -> Path:
    """Write `dset` in its own layout under folder `out`; returns the path of the set. Every file is written to
    a temporary name and renamed, so a crash never leaves a half-written set."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    x = np.ascontiguousarray(dset.images, dtype=np.float32)
    if "zca" in dset.extra:                       # back to the whitened space it was read from
        from diver_lite.core.zca import whiten

        x = whiten(x, *dset.extra["zca"])
    x = to_storage(x, dset.extra.get("storage"))  # integer pixels go back as the integers they were read as
    return get_layout(dset.layout).write(dset, x, out)
