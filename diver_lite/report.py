"""What a run reports: versions, peak memory, the before/after grid, and report.md rendered from report.json."""

import importlib.metadata
import platform
import resource
import sys

import numpy as np

from .data import to_display


def versions() -> dict:
    """The versions of what this process used: torch, diffusers and onnxruntime only if they were imported."""
    from . import __version__

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


def torch_device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"torch {device} ({torch.cuda.get_device_name(device)})"
    return f"torch cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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


def render_markdown(report: dict) -> str:
    cfg, t, mem = report["config"], report["timings_s"], report["peak_memory"]
    lines = [
        "# diver-lite recovery report", "",
        f"- input: `{report['input']['path']}` ({report['input']['layout']}, {report['input']['images']} images "
        f"{report['input']['shape']}, pixel space {report['input']['pixel_space']})",
        f"- output: `{report['output']['set']}`",
        f"- model: `{report['model']['source']}` (image {report['model']['image_size']}², latent "
        f"{report['model']['latent']})",
        f"- backend: {report['backend']} on {report['device']} (provider {report['provider']})",
        f"- seed: {cfg['seed']}",
        f"- images recovered in this run: {report['images_this_run']} (resumed with "
        f"{report['images_before_resume']} done)", "",
        "## Configuration", "", "| option | value |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in cfg.items()], "",
        "## Time and memory", "", "| stage | seconds |", "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in t.items()], "",
        *[f"- {k}: {v}" for k, v in mem.items()], "",
        "## Versions", "", *[f"- {k}: {v}" for k, v in report["versions"].items()], "",
    ]
    return "\n".join(lines)
