"""Choosing a runtime plan from a memory budget: the fastest candidate whose estimated peak fits."""

from diver_lite.errors import ConfigError
from diver_lite.memory.estimate import ModelSizes, estimate_peak_bytes
from diver_lite.memory.plan import RuntimePlan

# Fastest first, per device. VAE tiling changes the result (34 dB PSNR from untiled on DiT-XL/2's VAE at 256²,
# docs/benchmarks/memory.md), so only the last resort uses it.
CANDIDATES = {
    "cuda": [RuntimePlan("fp16"), RuntimePlan("int8"), RuntimePlan("fp16", "model"),
             RuntimePlan("int8", "model", vae_slicing=True), RuntimePlan("fp16", "stream", vae_slicing=True),
             RuntimePlan("fp16", "sequential", vae_slicing=True),
             RuntimePlan("fp16", "sequential", vae_slicing=True, vae_tiling=True)],
    "cpu": [RuntimePlan("bf16"), RuntimePlan("int8"), RuntimePlan("bf16", "model"),
            RuntimePlan("int8", "model", vae_slicing=True), RuntimePlan("bf16", "stream", vae_slicing=True),
            RuntimePlan("bf16", "stream", vae_slicing=True, vae_tiling=True)],
}


def choose_plan(budget_bytes: int, sizes: ModelSizes, batch: int, device_type: str, runtime_bytes: int = 0,
                candidates: list | None = None) -> tuple:
    """The first (fastest) candidate whose estimate fits the budget; ConfigError naming the smallest if none."""
    options = candidates or CANDIDATES["cuda" if device_type == "cuda" else "cpu"]
    tried = []
    for plan in options:
        est = estimate_peak_bytes(plan, sizes, batch, device_type, runtime_bytes)
        if est["total"] <= budget_bytes:
            return plan, est
        tried.append((est["total"], plan))
    smallest, plan = min(tried, key=lambda t: t[0])
    what = "GPU memory" if device_type == "cuda" else "RAM"
    raise ConfigError(f"no plan fits {budget_bytes / 2**30:.2f} GB of {what}: the smallest, {plan.label}, needs "
                      f"about {smallest / 2**30:.2f} GB", "raise the budget or lower --batch-size")


def plan_for_budget(sizes: ModelSizes, device_type: str, budget_gb: float, batch_size: int = 1) -> tuple:
    """The fastest plan whose estimated peak fits `budget_gb` (device memory on CUDA, process RSS on the CPU)."""
    from diver_lite.machine import current_rss_bytes

    if budget_gb <= 0:
        raise ConfigError(f"memory budget {budget_gb} GB", "give a positive number of GB")
    return choose_plan(int(budget_gb * 2**30), sizes, batch_size, device_type,
                       current_rss_bytes() if device_type == "cpu" else 0)


AUTO_MARGIN = 0.10     # of the free memory, left for the allocator, the CUDA context and other processes


def auto_budget_gb(device) -> float:
    """What `--vram-budget auto` / `--ram-budget auto` mean: on CUDA the device's free memory less 10 %; on the CPU
    this process's memory plus 90 % of what the system has available."""
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        return free * (1 - AUTO_MARGIN) / 2**30
    from diver_lite.layouts.tensors import available_memory
    from diver_lite.machine import current_rss_bytes

    available = available_memory()
    if available is None:
        raise ConfigError("this system does not say how much memory is available", "give --ram-budget GB")
    return (current_rss_bytes() + available * (1 - AUTO_MARGIN)) / 2**30


def largest_batch(plan, sizes: ModelSizes, device_type: str, budget_bytes: int, runtime_bytes: int = 0,
                  limit: int = 256) -> tuple:
    """(batch, plan, estimate): the largest batch up to `limit` whose estimated peak fits under `plan`, or under
    `plan` with VAE slicing when that fits a larger one. Batch 1 when even that does not fit (the caller's plan
    choice has already said whether batch 1 fits)."""
    from dataclasses import replace

    def fits(p, b: int) -> bool:
        return estimate_peak_bytes(p, sizes, b, device_type, runtime_bytes)["total"] <= budget_bytes

    best = (1, plan)
    for p in (plan,) if plan.vae_slicing else (plan, replace(plan, vae_slicing=True)):
        if not fits(p, 1):
            continue
        lo, hi = 1, limit                      # the estimate grows with the batch: bisect
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(p, mid) else (lo, mid - 1)
        if lo > best[0]:
            best = (lo, p)
    batch, chosen = best
    return batch, chosen, estimate_peak_bytes(chosen, sizes, batch, device_type, runtime_bytes)
