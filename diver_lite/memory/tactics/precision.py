"""--precision: how the DiT's weights are held (fp32 reference, bf16/fp16, int8, fp8 storage), one row each."""

from dataclasses import dataclass

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic


@dataclass(frozen=True)
class ComputeDtype:
    torch_name: str                  # the torch dtype (torch.<name>), named so that plans need no torch import
    bytes: int


# The dtypes activations and the layers that are not low-bit run in: the one table the estimate (bytes) and the
# runtime (torch dtype) read.
COMPUTE_DTYPES = {"fp32": ComputeDtype("float32", 4), "bf16": ComputeDtype("bfloat16", 2),
                  "fp16": ComputeDtype("float16", 2)}


@dataclass(frozen=True)
class Precision:
    compute: dict                    # device type (or "*") -> the dtype activations and other layers run in
    devices: tuple = ("cpu", "cuda", "mps")
    quantize: str | None = None      # "module:function" making the block linears low-bit in place (memory/quantize.py)
    weight_bits: int = 0             # bits per weight of those layers
    scale_every: int = 0             # one 1-byte scale per this many weights (0: none)
    moves: bool = True               # its low-bit layers can be offloaded (bitsandbytes' int8 stays where made)
    note: str = ""


PRECISIONS = {
    "fp32": Precision({"*": "fp32"}),
    "bf16": Precision({"*": "bf16"}),
    "fp16": Precision({"*": "fp16"}),
    "int8": Precision({"cuda": "fp16", "*": "bf16"}, ("cpu", "cuda"), "quantize_int8", 8, 64, moves=False,
                      note="int8 kernels are CPU/CUDA only"),
    "fp8": Precision({"*": "bf16"}, ("cpu", "cuda"), "store_fp8", 8, 0,
                     note="float8 storage is CPU/CUDA only"),
    # fp8 weights and activations on fp8 tensor cores (Ada/Hopper: compute capability 8.9+), torchao's dynamic
    # per-row float8; on other devices the storage-only fp8 above is the one that runs.
    "fp8-compute": Precision({"*": "bf16"}, ("cuda",), "quantize_fp8_compute", 8, 0, moves=False,
                             note="fp8 matmuls need a GPU with fp8 tensor cores; use fp8 (storage) here"),
    # bitsandbytes' NF4, blocks of 64 with an fp32 absmax each (4 bytes per 64 weights). On the CPU torchao's int4
    # weight-only kernels do not run with this torch/torchao (plain needs mslk, opaque is gone, the 4-d tile
    # packing needs CUDA: measured 2026-11-28), so nf4 is refused there.
    "nf4": Precision({"*": "bf16"}, ("cuda",), "quantize_nf4", 4, 16, moves=False,
                     note="4-bit weights run through bitsandbytes on CUDA; torchao's int4 has no CPU kernel in this "
                          "build"),
}


def compute_dtype(precision: str, device_type: str) -> str:
    table = PRECISIONS[precision].compute
    return table.get(device_type, table["*"])


def quantizer(precision: str):
    """quantize(transformer_or_block, device, keep_modulation) -> names of the layers made low-bit, or None."""
    name = PRECISIONS[precision].quantize
    if name is None:
        return None
    from diver_lite.memory import quantize

    return getattr(quantize, name)


def _check(plan) -> None:
    if plan.precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {plan.precision!r}", f"use one of {', '.join(PRECISIONS)}")


def _check_device(plan, device_type: str) -> None:
    if device_type == "cpu" and "fp16" in (plan.compute_dtype("cpu"), plan.vae_dtype("cpu")):
        raise ConfigError("fp16 on the CPU runs several times slower than fp32", "use --precision bf16 on CPU")
    if device_type not in PRECISIONS[plan.precision].devices:
        raise ConfigError(f"{plan.label} is not available on {device_type.upper()} "
                          f"({PRECISIONS[plan.precision].note or 'not supported there'})",
                          "use --precision bf16, int8 or fp8 there" if device_type == "cpu" else
                          "on Apple silicon use --precision fp16 or bf16, or --offload model")


def _estimate(e, plan, sizes, device_type: str, batch: int) -> None:
    p = PRECISIONS[plan.precision]
    if p.quantize:   # the block linears in weight_bits (plus scales); the rest in the compute dtype
        low = sizes.block_int8_params - (sizes.block_modulation_params if plan.keep_modulation else 0)
        scales = low // p.scale_every if p.scale_every else 0
        e.block = low * p.weight_bits // 8 + (sizes.block_params - low) * e.dit_bytes + scales


ENTRY = Tactic(
    name="precision", default="fp32", order=0, label_order=0, option="--precision", choices=tuple(PRECISIONS),
    help="DiT weights: fp32 (reference), bf16 (CPU or CUDA), fp16 (CUDA), int8 (torchao on CPU, bitsandbytes on "
         "CUDA), fp8 (float8 storage, bf16 compute: diffusers' layerwise casting), fp8-compute (float8 matmuls, "
         "torchao, GPUs with fp8 tensor cores), nf4 (bitsandbytes 4-bit, CUDA); "
         "under int8/fp8/nf4 the VAE runs in 16 bit.  [default: fp32]",
    chosen_by_budget=True, label=lambda v: v, check=_check, check_device=_check_device, estimate=_estimate)
