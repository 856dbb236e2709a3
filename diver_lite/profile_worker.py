"""One plan of `diver-lite profile`, in its own process so that its peak memory is its own:
    python -m diver_lite.profile_worker SPEC.json
SPEC names the model, the device, the plan, the recovery config and an .npz of inputs; the worker writes
RESULT.json (memory, times, the estimate) and RESULT.npz (final latents and images) beside it."""

import json
import sys
import time
from pathlib import Path

import numpy as np


def run(spec: dict) -> dict:
    from .report import current_rss_bytes, peak_rss_mb
    from .runtime_plan import RuntimePlan, estimate_peak_bytes

    import torch

    from .backend import TorchBackend
    from .config import RecoverConfig
    from .pipeline import resolve_device
    from .recovery import StageTimes, recover_batch
    from .runtime import build_runtime, sizes_for
    from .schedule import build_plan

    with np.load(spec["inputs"]) as z:
        images, dit_labels = z["images"], z["dit_labels"]
    device = resolve_device(spec["device"])
    plan = RuntimePlan(**spec["plan"])
    config = RecoverConfig(**spec["config"])
    sizes = sizes_for(spec["model"], spec["vae"])
    estimate = estimate_peak_bytes(plan, sizes, config.batch_size, device.type, current_rss_bytes())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    runtime = build_runtime(spec["model"], spec["vae"], device, plan)
    backend = TorchBackend(runtime.models, config.cfg_channels, runtime.placement, device, runtime)
    load_s = time.perf_counter() - start

    step_times: list[float] = []
    denoise = backend.denoiser.__call__

    def timed(*args, **kwargs):
        t = time.perf_counter()
        out = denoise(*args, **kwargs)
        backend.synchronize()
        step_times.append(time.perf_counter() - t)
        return out

    latents = []
    decode = backend.decode
    backend.denoiser = timed
    backend.decode = lambda z: (latents.append(backend.numpy(z)), decode(z))[1]

    sampling = build_plan(config, backend.schedule)
    n, bs = len(images), config.batch_size
    warmup = spec.get("warmup_batches", 0)
    outs, timed_images, times = [], 0, StageTimes()
    counted_steps = 0
    for k, lo in enumerate(range(0, n, bs)):
        idx = list(range(lo, min(lo + bs, n)))
        stage = StageTimes() if k < warmup else times
        before = len(step_times)
        outs.append(recover_batch(backend, images[idx], dit_labels[idx], idx, config, sampling,
                                  spec["pixel_space"], times=stage))
        if k >= warmup:
            timed_images += len(idx)
            counted_steps += len(step_times) - before
    if k < warmup:   # every batch was a warm-up: time them anyway
        times, timed_images, counted_steps = stage, len(idx), len(step_times)
    steps = step_times[-counted_steps:] if counted_steps else step_times
    result = {
        "plan": plan.to_dict() | {"label": plan.label}, "device": backend.device_name(),
        "estimate_mb": {k: round(v / 2**20, 1) for k, v in estimate.items()},
        "load_s": round(load_s, 3), "time_per_step_s": round(float(np.mean(steps)), 4),
        "time_per_image_s": round(sum(times.seconds.values()) / max(1, timed_images), 4),
        "stage_s": {k: round(v, 4) for k, v in times.seconds.items()}, "timed_images": timed_images,
        "int8_layers": runtime.int8_layers, "compute_dtype": plan.compute_dtype(device.type),
        "peak": {"cpu_rss_mb": peak_rss_mb()},
    }
    if device.type == "cuda":
        result["peak"]["cuda_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        result["peak"]["cuda_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
        nvml = _nvml_process_mb(device)
        if nvml is not None:
            result["peak"]["nvml_process_mb"] = nvml
    np.savez(spec["result"] + ".npz", latents=np.concatenate(latents), images=np.concatenate(outs))
    return result


def _nvml_process_mb(device) -> float | None:
    """This process's GPU memory as the driver sees it (CUDA context included), at the end of the run."""
    try:
        import os

        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return round(proc.usedGpuMemory / 2**20, 1)
    except Exception:
        return None
    return None


def main(argv: list[str]) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    spec = json.loads(Path(argv[0]).read_text())
    from .errors import DiverLiteError, first_line

    try:
        result = run(spec)
    except DiverLiteError as e:
        result = {"error": str(e)}
    except MemoryError:
        result = {"error": "out of memory"}
    except Exception as e:  # noqa: BLE001 (a plan failing must not stop the others; its error is reported)
        import torch

        oom = isinstance(e, torch.OutOfMemoryError)
        result = {"error": "out of GPU memory" if oom else f"{type(e).__name__}: {first_line(e, 300)}"}
    Path(spec["result"] + ".json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
