"""Choosing a runtime plan from a memory budget: the fastest candidate whose estimated peak fits."""

from diver_lite.errors import ConfigError
from diver_lite.memory.estimate import ModelSizes, estimate_peak_bytes
from diver_lite.memory.plan import RuntimePlan

# Fastest first, per device. VAE tiling changes the result (34 dB PSNR from untiled on DiT-XL/2's VAE at 256²,
# docs/BENCHMARKS.md), so only the last resort uses it.
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
    from diver_lite.pipeline.report import current_rss_bytes

    if budget_gb <= 0:
        raise ConfigError(f"memory budget {budget_gb} GB", "give a positive number of GB")
    return choose_plan(int(budget_gb * 2**30), sizes, batch_size, device_type,
                       current_rss_bytes() if device_type == "cpu" else 0)
