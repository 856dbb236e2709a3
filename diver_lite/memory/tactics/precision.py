"""--precision: the DiT's weights (fp32 reference, bf16/fp16, int8 through torchao on the CPU or bitsandbytes on
CUDA, the activations then in 16 bit)."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic

# precision -> {device type or "*": compute dtype}
PRECISIONS = {"fp32": {"*": "fp32"}, "bf16": {"*": "bf16"}, "fp16": {"*": "fp16"},
              "int8": {"cuda": "fp16", "*": "bf16"}}


def compute_dtype(precision: str, device_type: str) -> str:
    table = PRECISIONS[precision]
    return table.get(device_type, table["*"])


def _check(plan) -> None:
    if plan.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {plan.precision!r}", f"use one of {', '.join(PRECISIONS)}")


def _check_device(plan, device_type: str) -> None:
    if device_type == "cpu" and "fp16" in (plan.compute_dtype("cpu"), plan.vae_dtype("cpu")):
        raise ConfigError("fp16 on the CPU runs several times slower than fp32", "use --precision bf16 on CPU")
    if device_type == "mps" and plan.precision == "int8":
        raise ConfigError(f"{plan.label} is not available on MPS (int8 kernels and streaming are CPU/CUDA only)",
                          "on Apple silicon use --precision fp16 or bf16, or --offload model")


def _estimate(e, plan, sizes, device_type: str, batch: int) -> None:
    if plan.precision == "int8":   # int8 weights plus per-row scales; the rest in the compute dtype
        int8 = sizes.block_int8_params - (sizes.block_modulation_params if plan.keep_modulation else 0)
        e.block = int8 * 1 + (sizes.block_params - int8) * e.dit_bytes + int8 // 64


ENTRY = Tactic(
    name="precision", default="fp32", order=0, label_order=0, option="--precision", choices=tuple(PRECISIONS),
    help="DiT weights: fp32 (reference), bf16 (CPU or CUDA), fp16 (CUDA), int8 (torchao on CPU, bitsandbytes on "
         "CUDA; the VAE then runs in 16 bit).  [default: fp32]",
    chosen_by_budget=True, label=lambda v: v, check=_check, check_device=_check_device, estimate=_estimate)
