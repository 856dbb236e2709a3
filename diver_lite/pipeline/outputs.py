"""What a finished run leaves in OUT: the recovered set in its input's layout, the PNGs and the before/after grid."""

from pathlib import Path

import numpy as np

from diver_lite.layouts import DistilledSet, write_set
from diver_lite.layouts.files import atomic_write, save_png
from diver_lite.pipeline.report import before_after_grid, change_summary
from diver_lite.pipeline.run_state import cached_image


def write_outputs(dset: DistilledSet, state: Path, out: Path, write_pngs: bool, max_png: int | None) -> dict:
    """The recovered set in the input's layout, the PNGs (at most `max_png`) and the before/after grid."""
    from safetensors.numpy import load_file

    images = np.stack([load_file(str(cached_image(state, i)))["image"] for i in range(len(dset))])
    set_path = write_set(dset.with_images(images), out)
    pngs = 0
    if write_pngs:
        labels = dset.hard_labels.tolist()
        for i in range(min(len(dset), max_png if max_png is not None else len(dset))):
            save_png(images[i], out / "png" / str(labels[i]) / f"{i:06d}.png", dset.pixel_space)
            pngs += 1
        grid = before_after_grid(dset.images, images, dset.pixel_space)
        from PIL import Image

        atomic_write(out / "grid.png", lambda tmp: Image.fromarray(grid).save(tmp, format="PNG"), suffix=".png")
    return {"set": str(set_path), "png": str(out / "png") if write_pngs else None, "pngs_written": pngs,
            "grid": str(out / "grid.png") if write_pngs else None,
            "change": change_summary(dset.images, images, dset.pixel_space)}
