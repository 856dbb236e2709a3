"""The protocol of a distilled-set layout (layouts/): how it is recognised, read and written back."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


class Probe:
    """A path being recognised; a torch file's content is loaded once, for every layout that looks at it."""

    def __init__(self, path: Path):
        self.path = path

    @cached_property
    def content(self):
        from diver_lite.layouts.tensors import load_tensors

        return load_tensors(self.path)


@dataclass(frozen=True)
class Layout:
    name: str
    reads_folder: bool             # the set is a folder (else one file)
    pixel_space: str               # the convention of its tensors, when the reader does not find one
    expects: str                   # what it looks like, for messages: "images_best.pt + labels_best.pt (MTT/EDF)"
    # read(path, options) -> (images [N, C, H, W] float32, labels, extra, pixel space); options: read_set's extras
    read: Callable
    # write(dset, images float32 [N, C, H, W], out folder) -> the path written
    write: Callable
    detect: Callable[[Probe], bool] | None = None   # None: only when named
    order: int = 100               # detection order: the first layout whose detect() says yes
    mosaic: bool = False           # images are 2x2 mosaics recovered as four (NCFM)
    options: tuple[str, ...] = ()  # read_set's extra arguments it takes ("experiment")
    suffixes: tuple[str, ...] = () # the file suffixes it reads (".npz"); empty: any
