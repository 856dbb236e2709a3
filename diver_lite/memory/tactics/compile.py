"""--compile: torch.compile of the whole DiT, once (CUDA graphs on CUDA, "reduce-overhead"): fewer kernel launches.

The whole transformer is compiled, not each block: with CUDA graphs, every entry into a separately compiled block
starts a new cudagraph-tree generation that frees the previous generation's outputs, so block k + 1 would read
block k's output after it was overwritten (pytorch/pytorch#152887; benchmarks/gpu/check.sh reproduces it in three
lines). One compiled forward keeps every intermediate inside one generation; its output is copied out at once
(backends/denoiser.py), so the next step's replay cannot overwrite what the sampler still reads. Shapes stay static
per batch size: CFG doubles the batch, so a run compiles once per (batch, CFG or not) and the last, smaller batch
once more."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic


def _check(plan) -> None:
    if plan.compile and plan.offload in ("sequential", "stream"):
        raise ConfigError(f"--compile cannot be combined with --offload {plan.offload} (its hooks move weights inside "
                          "each block's forward)", "use --compile with --offload none or model")


def compile_mode(device_type: str) -> str | None:
    """CUDA graphs ("reduce-overhead") on CUDA; the default inductor mode elsewhere."""
    return "reduce-overhead" if device_type == "cuda" else None


def _apply(models, plan) -> None:
    if not plan.compile:
        return
    device = next(models.transformer.parameters()).device
    models.transformer.compile(mode=compile_mode(device.type), dynamic=False)


ENTRY = Tactic(
    name="compile", default=False, order=7, label_order=7, option="--compile",
    help="torch.compile the whole DiT once (CUDA graphs on CUDA): less launch overhead at small batches; the first "
         "batch of each size pays the compilation.",
    label=lambda v: "compile" if v else None,
    parse=lambda part: {"compile": True} if part == "compile" else None, check=_check, apply=_apply)
