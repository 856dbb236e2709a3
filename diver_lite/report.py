"""What a run reports: versions, peak memory, the before/after grid, and report.md rendered from report.json."""

import platform
import resource
import sys

import torch

from .data import to_display


def versions() -> dict:
    import diffusers
    import numpy

    from . import __version__

    return {"diver_lite": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "diffusers": diffusers.__version__, "numpy": numpy.__version__, "platform": platform.platform()}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"torch {device} ({torch.cuda.get_device_name(device)})"
    return f"torch cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"


def peak_memory_mb(device: torch.device) -> dict:
    """Peak resident memory of this process (Linux reports KiB) and, on CUDA, torch's peak allocation."""
    out = {"cpu_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.type == "cuda":
        out["cuda_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return out


def before_after_grid(before: torch.Tensor, after: torch.Tensor, space: str, columns: int = 10,
                      max_images: int = 50, min_size: int = 64) -> torch.Tensor:
    """[H, W, 3] uint8: rows of originals, each above its recovered images, at most `max_images` pairs."""
    n = min(len(before), max_images)
    size = max(before.shape[-1], after.shape[-1], min_size)
    pad = 2

    def tile(img):
        t = to_display(img, space).permute(2, 0, 1).float()[None]
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="nearest")[0]
        return t.permute(1, 2, 0).to(torch.uint8)

    rows = []
    for start in range(0, n, columns):
        for src in (before, after):
            row = torch.full((size + 2 * pad, columns * (size + pad) + pad, 3), 255, dtype=torch.uint8)
            for j, i in enumerate(range(start, min(start + columns, n))):
                x0 = pad + j * (size + pad)
                row[pad:pad + size, x0:x0 + size] = tile(src[i])
            rows.append(row)
    return torch.cat(rows, dim=0)


def render_markdown(report: dict) -> str:
    cfg, t, mem = report["config"], report["timings_s"], report["peak_memory"]
    lines = [
        "# diver-lite recovery report", "",
        f"- input: `{report['input']['path']}` ({report['input']['layout']}, {report['input']['images']} images "
        f"{report['input']['shape']}, pixel space {report['input']['pixel_space']})",
        f"- output: `{report['output']['set']}`",
        f"- model: `{report['model']['source']}` (image {report['model']['image_size']}², latent "
        f"{report['model']['latent']}, {report['model']['transformer_parameters']:,} DiT parameters)",
        f"- device: {report['device']}", f"- seed: {cfg['seed']}",
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
