"""The memory-runtime options shared by `recover` and `profile`: precision, offload, attention slicing, VAE
slicing/tiling, and memory budgets that choose a plan."""

import math

import click

from diver_lite.errors import ConfigError

RUNTIME_HELP = """
\b
Memory (torch backend):
  fp32 is the reference. CPU: bf16 runs at about 0.3x the fp32 time; int8 (torchao) holds the DiT in a quarter of
  the fp32 memory. CUDA: fp16/bf16; int8 through bitsandbytes. --offload model/stream/sequential trade time for
  memory; --vram-budget/--ram-budget pick the fastest plan whose estimate fits and print it.
"""


def optgroup_runtime(f):
    options = [
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "int8"]), default=None,
                     help="DiT weights: fp32 (reference), bf16 (CPU or CUDA), fp16 (CUDA), int8 (torchao on CPU, "
                          "bitsandbytes on CUDA; the VAE then runs in 16 bit).  [default: fp32]"),
        click.option("--vae-precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
                     help="VAE weights, when they should differ from the DiT's."),
        click.option("--keep-modulation", is_flag=True,
                     help="int8: keep the adaLN modulation layers in 16 bit (more memory, closer to fp32)."),
        click.option("--offload", type=click.Choice(["none", "model", "sequential", "stream"]), default=None,
                     help="model: only the running component on the device; stream: the DiT one block at a time "
                          "(from RAM on CUDA, from the safetensors file on CPU); sequential: accelerate's "
                          "per-layer hooks (CUDA only).  [default: none]"),
        click.option("--attention-slice", default="off", metavar="auto|off|N",
                     help="Slice attention per module, N head-batches at a time. auto slices only modules that "
                          "form the whole score matrix (torch 2's attention never does)."),
        click.option("--vae-slicing", is_flag=True, help="Run the VAE one image at a time."),
        click.option("--vae-tiling", is_flag=True, help="Run the VAE in overlapping tiles of half the image (at "
                     "least 128 px): less memory, but the result moves (34 dB PSNR from untiled, DiT-XL/2's VAE "
                     "shape at 256², random weights)."),
        click.option("--vram-budget", type=float, default=None, metavar="GB",
                     help="Choose the fastest plan whose estimated peak GPU memory fits (CUDA)."),
        click.option("--ram-budget", type=float, default=None, metavar="GB",
                     help="Choose the fastest plan whose estimated peak RAM fits (CPU)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def runtime_from_options(o: dict, backend: str) -> dict:
    """recover()/profile keyword arguments (plan, budget_gb) from the CLI options."""
    from diver_lite.runtime_plan import RuntimePlan

    budget = o["vram_budget"] if o["vram_budget"] is not None else o["ram_budget"]
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise ConfigError(f"memory budget {budget} GB", "give a positive, finite number of GB, e.g. --ram-budget 4")
    if o["vram_budget"] is not None and o["ram_budget"] is not None:
        raise ConfigError("--vram-budget and --ram-budget were both given", "give the one for your device")
    explicit = [k for k in ("precision", "offload") if o[k] is not None]
    if budget is not None and explicit:
        raise ConfigError(f"--{explicit[0]} and a memory budget were both given",
                          "drop the budget to fix the plan yourself, or drop --" + explicit[0])
    if backend != "torch" and (explicit or budget is not None):
        raise ConfigError("precision, offload and budgets apply to the torch backend",
                          "an ONNX folder's precision is fixed at export (diver-lite export --precision)")
    plan = RuntimePlan(o["precision"] or "fp32", o["offload"] or "none", o["attention_slice"], o["vae_precision"],
                       o["vae_slicing"], o["vae_tiling"], o["keep_modulation"])
    return {"plan": plan, "budget_gb": budget,
            "budget_for": None if budget is None else ("cuda" if o["vram_budget"] is not None else "cpu")}
