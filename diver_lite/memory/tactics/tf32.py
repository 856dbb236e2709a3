"""--tf32/--no-tf32: TF32 tensor-core matmuls for fp32 on CUDA (on by default, as DiT's own sample.py has it)."""

from diver_lite.memory.tactic import Tactic


def _apply(models, plan) -> None:
    import torch

    if next(models.transformer.parameters()).device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = plan.tf32
        torch.backends.cudnn.allow_tf32 = plan.tf32


ENTRY = Tactic(
    name="tf32", default=True, order=8, label_order=8, option="--tf32",
    help="TF32 matmuls and convolutions for fp32 on CUDA (about 10 bits of mantissa in the products, several times "
         "faster on tensor cores; DiT's sample.py enables it). --no-tf32 for strict fp32. No effect elsewhere.",
    label=lambda v: None if v else "no-tf32",
    parse=lambda part: {"tf32": False} if part == "no-tf32" else None, apply=_apply)
