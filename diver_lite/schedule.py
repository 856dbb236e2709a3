"""The truncated, respaced schedule of one recovery run as plain numbers (SPEC §2 steps 2-5).

diffusers' DDPMScheduler does the scheduling (linear betas, `timestep_spacing="linspace"`, which is DiT's
50-step respacing 0, 20, 41, ..., 999); this module reads its timesteps and alphas_cumprod into one `StepParams`
per executed step, so the sampler needs only floats and works the same on torch tensors and numpy arrays.
"""

import math
from dataclasses import dataclass

from .config import RecoverConfig


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
class SamplingPlan:
    init_timestep: int        # tau_{t_init}: the inherited latent is noised to this level
    init_alpha_bar: float
    sampler: str              # "ddim" | "ddpm"
    sigma_scaling: bool
    steps: tuple[StepParams, ...]


def make_scheduler(schedule: dict, num_sampling_steps: int):
    """diffusers' DDPMScheduler configured as DiT samples: learned-range variance, linspace respacing."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**schedule, variance_type="learned_range", clip_sample=False,
                          prediction_type="epsilon", timestep_spacing="linspace")
    sched.set_timesteps(num_sampling_steps)
    return sched


def build_plan(config: RecoverConfig, schedule: dict) -> SamplingPlan:
    sched = make_scheduler(schedule, config.num_sampling_steps)
    S, K = config.num_sampling_steps, config.effective_steps
    taus = [int(t) for t in sched.timesteps.flip(0)]            # taus[i] = tau_i, ascending
    abar = sched.alphas_cumprod.double()
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
    return SamplingPlan(init_timestep=taus[config.t_init], init_alpha_bar=float(abar[taus[config.t_init]]),
                        sampler=config.sampler, sigma_scaling=config.sigma_scaling, steps=tuple(steps))
