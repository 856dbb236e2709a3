"""One plan of `diver-lite profile`, in its own process so that its peak memory is its own:
    python -m diver_lite.profiling.worker PLAN.json
PLAN.json names the model, the device, the plan, the recovery config and an .npz of inputs; the worker writes
RESULT.json (memory, times, the estimate) and RESULT.npz (final latents and images) beside it."""

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def run(spec: dict) -> dict:
    """One plan through the engine and batch loop that `recover` uses; each reverse step is timed through the
    sampler's callback, and the last step's x is the batch's final latent."""
    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.recovery import StageTimes
    from diver_lite.core.schedule import build_schedule
    from diver_lite.pipeline.batches import recover_batches
    from diver_lite.pipeline.report import current_rss_bytes, peak_rss_mb

    with np.load(spec["inputs"]) as z:
        images, dit_labels = z["images"], z["dit_labels"]
    config = RecoverConfig(**spec["config"])
    if spec["plan"].get("kind") == "onnxruntime":   # exported graphs: no torch imported, no estimate
        from diver_lite.backends.ort import OrtBackend
        from diver_lite.profiling.ort_plan import OrtPlan

        plan, device = OrtPlan(spec["plan"]["precision"], spec["plan"]["sessions"]), None
        label, estimate = plan.label, None
        start = time.perf_counter()
        backend = OrtBackend(spec["onnx"], device=spec["device"], cfg_channels=config.cfg_channels,
                             sessions=plan.sessions)
    else:
        import torch

        from diver_lite.memory.estimate import estimate_peak_bytes
        from diver_lite.memory.plan import RuntimePlan
        from diver_lite.memory.runtime import sizes_of
        from diver_lite.models.open import open_models
        from diver_lite.pipeline.engine import EngineSpec, build_engine, resolve_device

        device = resolve_device(spec["device"])
        plan = RuntimePlan(**spec["plan"])
        label = plan.label
        if spec.get("reference"):   # the fp32 reference is strict fp32 on CUDA too
            plan = replace(plan, tf32=False)
        opened = open_models(spec["model"], spec["vae"])   # sized on, then built from
        estimate = estimate_peak_bytes(plan, sizes_of(opened), config.batch_size, device.type, current_rss_bytes())
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        backend = build_engine(EngineSpec(model=spec["model"], vae=spec["vae"], device=spec["device"], plan=plan),
                               config.cfg_channels, config.batch_size, opened=opened)
    load_s = time.perf_counter() - start

    warmup, bs = spec.get("warmup_batches", 0), config.batch_size
    batches = [list(range(lo, min(lo + bs, len(images)))) for lo in range(0, len(images), bs)]
    stages = [StageTimes() for _ in batches]
    step_times: list[list[float]] = [[] for _ in batches]
    latents, current = [], {"k": 0, "last": None}

    def on_step(state: dict) -> None:
        backend.synchronize()
        now, k = time.perf_counter(), current["k"]
        before = current["last"] if step_times[k] else stages[k].started["sample"]
        step_times[k].append(now - before)
        current["last"] = now
        if state["i"] == 0:
            latents.append(backend.numpy(state["x"] / backend.scaling_factor))   # as the decoder gets it

    outs = []
    for k, (idx, y) in enumerate(recover_batches(backend, images, dit_labels, batches, config,
                                                 build_schedule(config, backend.schedule), spec["pixel_space"],
                                                 times=lambda k: stages[k], callback=on_step)):
        outs.append(y)
        current["k"] = min(k + 1, len(batches) - 1)
    timed = list(range(warmup, len(batches))) or list(range(len(batches)))   # all warm-up: time them anyway
    steps = [s for k in timed for s in step_times[k]]
    seconds = {name: sum(stages[k].seconds[name] for k in timed) for name in stages[0].seconds}
    timed_images = sum(len(batches[k]) for k in timed)
    runtime = backend.runtime
    result = {
        "plan": plan.to_dict() | {"label": label}, "device": backend.device_name(),
        "estimate_mb": {k: round(v / 2**20, 1) for k, v in estimate.items()} if estimate else None,
        "load_s": round(load_s, 3), "time_per_step_s": round(float(np.mean(steps)), 4),
        "time_per_image_s": round(sum(seconds.values()) / max(1, timed_images), 4),
        "stage_s": {k: round(v, 4) for k, v in seconds.items()}, "timed_images": timed_images,
        "int8_layers": runtime.int8_layers if runtime else None,
        "compute_dtype": plan.compute_dtype(device.type) if runtime else backend.describe()["precision"],
        "peak": {"cpu_rss_mb": peak_rss_mb()},
    }
    if runtime is not None and device.type == "cuda":
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
    from diver_lite.errors import DiverLiteError, first_line

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
