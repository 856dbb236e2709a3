"""--offload: where weights wait while another component runs (memory/offload.py holds the placements)."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic
from diver_lite.memory.tactics.precision import PRECISIONS

OFFLOADS = ("none", "model", "sequential", "stream")


def sequential_needs_cuda() -> ConfigError:
    """The one wording of this refusal (the plan's check and the placement raise it)."""
    return ConfigError("--offload sequential moves weights to a GPU layer by layer and needs CUDA",
                       "on the CPU use --offload stream (or model) to lower RAM")


def stream_needs_safetensors() -> ConfigError:
    """The one wording of this refusal (the runtime and the placement raise it)."""
    return ConfigError("--offload stream on the CPU reads DiT blocks from a safetensors file",
                       "give --model a diffusers folder with .safetensors weights (see models.save)")


def _check(plan) -> None:
    if plan.offload not in OFFLOADS:
        raise ConfigError(f"unknown offload {plan.offload!r}", f"use one of {', '.join(OFFLOADS)}")
    fixed = not PRECISIONS.get(plan.precision, PRECISIONS["fp32"]).moves   # bitsandbytes' layers stay where made
    if fixed and plan.offload in ("sequential", "stream") or plan.precision == "fp8" and plan.offload == "sequential":
        raise ConfigError(f"{plan.precision} weights cannot be combined with --offload {plan.offload}",
                          f"use --precision fp16/bf16 with it, or {plan.precision} with --offload none/model")


def _check_device(plan, device_type: str) -> None:
    if device_type == "mps" and plan.offload in ("sequential", "stream"):
        raise ConfigError(f"{plan.label} is not available on MPS (int8 kernels and streaming are CPU/CUDA only)",
                          "on Apple silicon use --precision fp16 or bf16, or --offload model")
    if plan.precision == "fp8" and plan.offload == "stream" and device_type == "cpu":
        raise ConfigError("fp8 with --offload stream saves nothing on the CPU (each block is read from the file for "
                          "its step)", "use --precision bf16 --offload stream, or fp8 with --offload none/model")
    if plan.offload == "sequential" and device_type != "cuda":
        raise sequential_needs_cuda()


def _estimate(e, plan, s, device_type: str, batch: int) -> None:
    if plan.offload == "none":
        return
    e.separate_on_device = True          # the DiT and the VAE are never on the device together
    if plan.offload == "model":
        e.dit_weights, e.vae_weights = e.resident + s.dit_blocks * e.block, max(e.encoder, e.decoder)
    elif plan.offload == "stream":       # CUDA holds the running block and the next one being copied
        e.dit_weights = e.resident + (2 if device_type == "cuda" else 1) * e.block
        e.vae_weights = max(e.encoder, e.decoder)
    else:                                # sequential: only the layer running is on the device
        e.dit_weights, e.vae_weights = e.block // 4, 0


ENTRY = Tactic(
    name="offload", default="none", order=1, label_order=1, option="--offload", choices=OFFLOADS,
    help="model: only the running component on the device; stream: the DiT one block at a time (from RAM on CUDA, "
         "from the safetensors file on CPU); sequential: accelerate's per-layer hooks (CUDA only).  [default: none]",
    chosen_by_budget=True, exact=True, label=lambda v: None if v == "none" else f"offload-{v}",
    parse=lambda part: {"offload": part[len("offload-"):]} if part.startswith("offload-") else None,
    check=_check, check_device=_check_device, estimate=_estimate)
