"""The truncated, respaced schedule of one recovery run as plain numbers (docs/algorithm.md, stages 2-5).

The numbers are diffusers' DDPMScheduler's, bit for bit (tested): linear betas in float32, alphas_cumprod
accumulated as torch does, `timestep_spacing="linspace"` (DiT's 50-step respacing 0, 20, 41, ..., 999). They are
computed here in numpy so that the sampler needs only floats and runs the same on torch tensors and on numpy
arrays for ONNX Runtime, without torch."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from diver_lite.core.config import RecoverConfig


@dataclass(frozen=True)
class StepParams:
    index: int                # i, the sampling index (K-1 ... 0)
    timestep: int             # tau_i, the DiT timestep
    alpha_bar: float          # abar(tau_i)
    alpha_bar_prev: float     # abar(tau_{i-1}); 1 at i = 0
    log_beta: float           # log beta_i of the respaced chain: the learned-range upper end
    log_posterior_var: float  # log beta~_i, at i = 0 clipped to beta~ of i = 1 (DiT): the lower end
    conditional: bool         # semantic fusion: class label + CFG on this step
    cfg_scale: float          # s when conditional (1.0 otherwise)
    guidance: float           # lambda_i of the semantic guidance: lambda inside [low, high], else 0


@dataclass(frozen=True)
class SamplingSchedule:
    init_timestep: int        # tau_{t_init}: the inherited latent is noised to this level
    init_alpha_bar: float
    sampler: str              # a name in core/samplers/ ("ddim", "ddpm")
    sigma_scaling: bool
    steps: tuple[StepParams, ...]
    guidance_target: str = "x0"   # what the guidance pulls toward z_inh: "x0" (x0_pred) or "xt" (x_i)


def alphas_cumprod(schedule: dict) -> np.ndarray:
    """diffusers' DDPMScheduler.alphas_cumprod for a linear schedule, reproduced exactly: torch.linspace in
    float32 (fused multiply-add, symmetric halves), then a cumulative product accumulated in float64."""
    if schedule.get("beta_schedule", "linear") != "linear":
        raise ValueError(f"beta_schedule {schedule['beta_schedule']!r} is not supported; DiT uses 'linear'")
    n = int(schedule["num_train_timesteps"])
    start, end = np.float32(schedule["beta_start"]), np.float32(schedule["beta_end"])
    step = np.float32((end - start) / np.float32(n - 1))
    idx = np.arange(n)
    betas = np.where(idx < n // 2, np.float64(start) + np.float64(step) * idx,
                     np.float64(end) - np.float64(step) * (n - idx - 1)).astype(np.float32)
    return np.cumprod((np.float32(1) - betas).astype(np.float64)).astype(np.float32)


def respaced_timesteps(num_train_timesteps: int, num_sampling_steps: int) -> np.ndarray:
    """tau_i for i = 0 .. S-1, ascending: diffusers' "linspace" spacing (descending there)."""
    return np.linspace(0, num_train_timesteps - 1, num_sampling_steps).round().astype(np.int64)


def build_schedule(config: RecoverConfig, schedule: dict) -> "SamplingSchedule":
    """The reverse steps a config runs on a model's training schedule (the numbers of each step, in order). A
    raw-DiT control runs every step from pure noise (its start has abar = 0), with labels and no guidance."""
    if config.control == "raw-dit":
        from diver_lite.core.controls import raw_dit_config

        full = build_schedule(raw_dit_config(config.replace(control="none")), schedule)
        return replace(full, init_alpha_bar=0.0)
    S, K = config.num_sampling_steps, config.effective_steps
    abar = alphas_cumprod(schedule).astype(np.float64)
    if S > len(abar):
        from diver_lite.errors import ConfigError

        raise ConfigError(f"{S} sampling steps do not fit the model's {len(abar)} training steps",
                          f"use --sampling-steps {min(50, len(abar))} or fewer than {len(abar) + 1}")
    taus = [int(t) for t in respaced_timesteps(len(abar), S)]   # taus[i] = tau_i
    low, high = config.window

    def alpha_bar_prev(i: int) -> float:
        return float(abar[taus[i - 1]]) if i > 0 else 1.0

    def posterior_var(i: int) -> float:
        a, a_prev = float(abar[taus[i]]), alpha_bar_prev(i)
        return (1 - a_prev) / (1 - a) * (1 - a / a_prev)

    steps = []
    for i in range(K - 1, -1, -1):
        a, a_prev = float(abar[taus[i]]), alpha_bar_prev(i)
        in_window = low <= i <= high
        conditional = config.label_phase == "all" or i <= high
        steps.append(StepParams(
            index=i, timestep=taus[i], alpha_bar=a, alpha_bar_prev=a_prev,
            log_beta=math.log(1 - a / a_prev),
            log_posterior_var=math.log(posterior_var(i if i > 0 else 1)) if S > 1 else math.log(1 - a),
            conditional=conditional, cfg_scale=config.cfg_scale if conditional else 1.0,
            guidance=config.guidance_scale if in_window else 0.0))
    return SamplingSchedule(init_timestep=taus[config.t_init], init_alpha_bar=float(abar[taus[config.t_init]]),
                        sampler=config.sampler, sigma_scaling=config.sigma_scaling, steps=tuple(steps),
                            guidance_target=config.guidance_target)
