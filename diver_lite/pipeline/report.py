"""What a run reports: versions, peak memory, the before/after grid, and report.md rendered from report.json."""

import importlib.metadata
import platform
import sys

import numpy as np

from diver_lite.core.metrics import psnr_from_mse
from diver_lite.core.prepare import resize, to_unit
from diver_lite.layouts.files import to_display
from diver_lite.machine import current_rss_bytes, peak_rss_mb, torch_device_name  # noqa: F401  (their home)


def versions() -> dict:
    """The versions of what this process used: torch, diffusers and onnxruntime only if they were imported."""
    from diver_lite import __version__

    out = {"diver_lite": __version__, "python": sys.version.split()[0], "numpy": np.__version__}
    for name in ("torch", "diffusers", "onnxruntime", "onnx"):
        if sys.modules.get(name) is not None:
            out[name] = importlib.metadata.version(name if name != "onnxruntime" else _ort_distribution())
    out["platform"] = platform.platform()
    return out


def _ort_distribution() -> str:
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            importlib.metadata.version(dist)
            return dist
        except importlib.metadata.PackageNotFoundError:
            continue
    return "onnxruntime"


def before_after_grid(before: np.ndarray, after: np.ndarray, space: str, columns: int = 10,
                      max_images: int = 50, min_size: int = 64) -> np.ndarray:
    """[H, W, 3] uint8: rows of originals, each above its recovered images, at most `max_images` pairs."""
    n = min(len(before), max_images)
    size = max(before.shape[-1], after.shape[-1], min_size)
    pad = 2

    def tile(img):  # nearest-neighbour upscale to size x size
        t = to_display(img, space)
        rows = np.arange(size) * t.shape[0] // size
        cols = np.arange(size) * t.shape[1] // size
        return t[rows][:, cols]

    rows = []
    for start in range(0, n, columns):
        for src in (before, after):
            row = np.full((size + 2 * pad, columns * (size + pad) + pad, 3), 255, dtype=np.uint8)
            for j, i in enumerate(range(start, min(start + columns, n))):
                x0 = pad + j * (size + pad)
                row[pad:pad + size, x0:x0 + size] = tile(src[i])
            rows.append(row)
    return np.concatenate(rows, axis=0)


def change_summary(before: np.ndarray, after: np.ndarray, space: str, most: int = 5, chunk: int = 256) -> dict:
    """How far recovery moved each image: the PSNR (dB) of each recovered image against its input, both in [0, 1]
    (clipped) at the input's size (channel means where the channel counts differ); its mean, median, min and max
    over the set, and the indices of the `most` changed images (lowest PSNR) to look at first. Computed `chunk`
    images at a time, so a large set is not copied whole. {} for an empty set."""
    if len(before) == 0:
        return {}
    mse = []
    for i in range(0, len(before), chunk):
        b = np.clip(to_unit(before[i:i + chunk].astype(np.float32), space), 0, 1)
        a = np.clip(to_unit(after[i:i + chunk].astype(np.float32), space), 0, 1)
        if a.shape[-2:] != b.shape[-2:]:
            a = resize(a, b.shape[-1], antialias=True)
        if a.shape[1] != b.shape[1]:
            a, b = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
        mse.append(((a - b) ** 2).reshape(len(b), -1).mean(axis=1))
    psnr = psnr_from_mse(np.concatenate(mse))
    r = lambda v: round(float(v), 2)  # noqa: E731
    return {"psnr_db_mean": r(psnr.mean()), "psnr_db_median": r(np.median(psnr)), "psnr_db_min": r(psnr.min()),
            "psnr_db_max": r(psnr.max()), "most_changed": [int(i) for i in np.argsort(psnr, kind="stable")[:most]]}


def _change_lines(change: dict) -> list[str]:
    if not change:
        return []
    return ["## How far recovery moved the images", "",
            f"PSNR of each recovered image against its input ([0, 1], the input's size): mean "
            f"{change['psnr_db_mean']} dB, median {change['psnr_db_median']} dB, from {change['psnr_db_min']} to "
            f"{change['psnr_db_max']} dB (higher: closer to the input). Most changed: images "
            f"{', '.join(map(str, change['most_changed']))}.", ""]


def render_markdown(report: dict) -> str:
    cfg, t, mem = report["config"], report["timings_s"], report["peak_memory"]
    lines = [
        "# diver-lite recovery report", "",
        f"- input: `{report['input']['path']}` ({report['input']['layout']}, {report['input']['images']} images "
        f"{report['input']['shape']}, pixel space {report['input']['pixel_space']})",
        f"- output: `{report['output']['set']}`",
        f"- model: `{report['model']['source']}` (image {report['model']['image_size']}², latent "
        f"{report['model']['latent']})",
        f"- backend: {report['backend']} on {report['device']} (provider {report['provider']})"
        + (f", plan {report['model']['plan']['label']}" if "plan" in report["model"] else ""),
        f"- seed: {cfg['seed']}",
        f"- images recovered in this run: {report['images_this_run']} (resumed with "
        f"{report['images_before_resume']} done)", "",
        *_change_lines(report["output"]["change"]),
        "## Configuration", "", "| option | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in cfg.items()], "",
        "## Time and memory", "", "| stage | seconds |", "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in t.items()], "",
        *[f"- {k}: {v}" for k, v in mem.items()], "",
        "## Versions", "", *[f"- {k}: {v}" for k, v in report["versions"].items()], "",
    ]
    return "\n".join(lines)


def line_plot(series: dict[str, list[float]], width: int = 640, height: int = 360, log_y: bool = True) -> np.ndarray:
    """A plain line chart ([H, W, 3] uint8) of one or more series against their index, drawn with Pillow."""
    from PIL import Image, ImageDraw

    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = 60, 20, width - 20, height - 40
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    values = [v for s in series.values() for v in s if v > 0 or not log_y]
    f = (lambda v: np.log10(max(v, 1e-12))) if log_y else (lambda v: v)
    lo, hi = (min(map(f, values)), max(map(f, values))) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    for k, (name, ys) in enumerate(series.items()):
        if len(ys) < 2:
            continue
        step = max(1, len(ys) // (right - left))  # at most one point per pixel column (mean of the bin)
        pts = [(left + (right - left) * i / (len(ys) - 1),
                bottom - (bottom - top) * (f(float(np.mean(ys[i:i + step]))) - lo) / (hi - lo))
               for i in range(0, len(ys), step)]
        draw.line(pts, fill=colours[k % len(colours)], width=1)
        draw.text((left + 10, top + 5 + 14 * k), name, fill=colours[k % len(colours)])
    axis = "log10 " if log_y else ""
    draw.text((5, top), f"{axis}{hi:.2f}", fill=(0, 0, 0))
    draw.text((5, bottom - 10), f"{axis}{lo:.2f}", fill=(0, 0, 0))
    draw.text((left, bottom + 10), "0", fill=(0, 0, 0))
    draw.text((right - 150, bottom + 10), "end of each series' steps", fill=(0, 0, 0))
    return np.asarray(img)


def image_grid(images01: np.ndarray, rows: int, scale: int = 2) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> one [rows*H, (N/rows)*W, 3] uint8 picture, each image `scale`x enlarged."""
    n, c, h, w = images01.shape
    cols = n // rows
    x = np.clip(images01[: rows * cols], 0, 1)
    x = np.repeat(x, 3, axis=1) if c == 1 else x
    x = x.reshape(rows, cols, 3, h, w).transpose(0, 3, 1, 4, 2).reshape(rows * h, cols * w, 3)
    x = np.repeat(np.repeat(x, scale, axis=0), scale, axis=1)
    return (x * 255).round().astype(np.uint8)
