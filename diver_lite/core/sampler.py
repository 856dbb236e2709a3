"""The DIVER reverse process as a plain function over a denoiser (docs/algorithm.md, stages 2-5; no I/O, no
torch needed).

A denoiser is any callable `denoiser(x, timestep, class_labels, cfg_scale) -> model_output` with x [B, C, h, w],
class_labels [B] or None (None: unconditional, the null class), returning [B, 2C, h, w]: the CFG-combined eps and
the conditional branch's variance values. The torch DiT and an ONNX Runtime session are both wrapped to this call,
so the same function drives both. `callback(state)` after each step gets k-diffusion's dict {x, i, x0_pred} (plus
`timestep` and `step`, the StepParams)."""

from collections.abc import Callable

from diver_lite.core.guidance import diver_step
from diver_lite.core.schedule import SamplingSchedule
from diver_lite.errors import ConfigError
from diver_lite.registry import discover

SAMPLERS = {s.name: s for s in discover("diver_lite.core.samplers")}


def report_step(callback: Callable[[dict], None] | None, x, x0_pred, p) -> None:
    """k-diffusion's callback after a step: {x, i, x0_pred} (plus the DiT timestep and the step's numbers)."""
    if callback is not None:
        callback({"x": x, "i": p.index, "x0_pred": x0_pred, "timestep": p.timestep, "step": p})


def inherited_start(z_inh, eps, schedule: SamplingSchedule):
    """Semantic inheritance: the inherited latent noised to sampling index t_init."""
    return schedule.init_alpha_bar ** 0.5 * z_inh + (1 - schedule.init_alpha_bar) ** 0.5 * eps


def diver_sample(denoiser: Callable, z_inh, eps, class_labels, schedule: SamplingSchedule,
                 step_noise: Callable[[int], object] | None = None, callback: Callable[[dict], None] | None = None):
    """z_inh: the inherited latent [B, C, h, w] (already scaled); eps: its forward noise, same shape;
    step_noise(i): the fresh noise of step i for a stochastic sampler. Returns the recovered latent x_0."""
    if schedule.sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {schedule.sampler!r}", f"use one of {', '.join(SAMPLERS)}")
    stochastic = SAMPLERS[schedule.sampler].stochastic
    x = inherited_start(z_inh, eps, schedule)
    for p in schedule.steps:
        # Semantic fusion: the step is conditional (label + CFG) only in the concrete phase.
        out = denoiser(x, p.timestep, class_labels if p.conditional else None, p.cfg_scale)
        noise = step_noise(p.index) if stochastic and p.index > 0 else None
        # Semantic guidance: pull x0_pred (or x_i) toward z_inh inside the window.
        x, x0_pred = diver_step(x, out, z_inh, p, SAMPLERS[schedule.sampler].update, noise, schedule.sigma_scaling,
                                schedule.guidance_target)
        report_step(callback, x, x0_pred, p)
    return x


def guided_step_sample(step: Callable, z_inh, eps, class_labels, null_labels, schedule: SamplingSchedule,
                       callback: Callable[[dict], None] | None = None):
    """DDIM through a whole-step graph (guided_step.onnx): step(x, timestep, labels, z_inh, p) -> (x_{i-1},
    x0_pred) runs CFG on [x; x] with labels [labels; null], the update and the guidance with p's numbers. Its
    contract: an unconditional step (semantic fusion) passes the null labels, so both CFG halves are the
    unconditional output and eps = eps_u whatever s; lambda_i is 0 there. Same result as diver_sample."""
    if schedule.sampler != "ddim":
        raise ConfigError("the guided step graph is a DDIM step", "use --sampler ddim, or --onnx-graph dit for DDPM")
    x = inherited_start(z_inh, eps, schedule)
    for p in schedule.steps:
        x, x0_pred = step(x, p.timestep, class_labels if p.conditional else null_labels, z_inh, p)
        report_step(callback, x, x0_pred, p)
    return x
