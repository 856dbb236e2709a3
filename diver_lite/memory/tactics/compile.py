"""--compile: torch.compile of the DiT's blocks (CUDA graphs on CUDA, "reduce-overhead"), fewer kernel launches."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic


def _check(plan) -> None:
    if plan.compile and plan.offload in ("sequential", "stream"):
        raise ConfigError(f"--compile cannot be combined with --offload {plan.offload} (its hooks move weights inside "
                          "each block's forward)", "use --compile with --offload none or model")


def _apply(models, plan) -> None:
    if not plan.compile:
        return
    device = next(models.transformer.parameters()).device
    # Shapes stay static per batch size (a smaller last batch compiles once more); CUDA graphs on CUDA.
    mode = "reduce-overhead" if device.type == "cuda" else None
    for block in models.transformer.transformer_blocks:
        block.compile(mode=mode, dynamic=False)


ENTRY = Tactic(
    name="compile", default=False, order=7, label_order=7, option="--compile",
    help="torch.compile the DiT blocks (CUDA graphs on CUDA): less launch overhead at small batches; the first "
         "batch of each size pays the compilation.",
    label=lambda v: "compile" if v else None,
    parse=lambda part: {"compile": True} if part == "compile" else None, check=_check, apply=_apply)
