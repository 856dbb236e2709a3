"""The truncated schedule and the step arithmetic, checked against diffusers' schedulers."""

import math

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diver_lite.core.config import RecoverConfig
from diver_lite.errors import ConfigError
from diver_lite.core.guidance import ddim_update, ddpm_update, learned_sigma, predict_x0
from diver_lite.models.diver_models import DIT_SCHEDULE
from diver_lite.core.schedule import StepParams, alphas_cumprod, build_schedule, respaced_timesteps


def _diffusers_ddpm(schedule=DIT_SCHEDULE, steps=50):
    sched = DDPMScheduler(**schedule, variance_type="learned_range", clip_sample=False, timestep_spacing="linspace")
    sched.set_timesteps(steps)
    return sched


@pytest.mark.parametrize("schedule", [DIT_SCHEDULE, dict(DIT_SCHEDULE, num_train_timesteps=4000),
                                      dict(DIT_SCHEDULE, beta_start=0.00085, beta_end=0.012)])
@pytest.mark.parametrize("steps", [50, 250, 7])
def test_numpy_schedule_equals_diffusers_bit_for_bit(schedule, steps):
    sched = _diffusers_ddpm(schedule, steps)
    assert np.array_equal(alphas_cumprod(schedule), sched.alphas_cumprod.numpy())
    assert np.array_equal(respaced_timesteps(schedule["num_train_timesteps"], steps)[::-1], sched.timesteps.numpy())


def test_respacing_is_dits_linspace_not_leading():
    plan = build_schedule(RecoverConfig(t_init=49, steps=50), DIT_SCHEDULE)
    taus = [p.timestep for p in reversed(plan.steps)]
    assert taus == [round(i * 999 / 49) for i in range(50)]
    assert taus[:3] == [0, 20, 41] and taus[-1] == 999


def test_truncated_run_starts_at_k_minus_1_and_noises_to_t_init():
    plan = build_schedule(RecoverConfig(t_init=10, steps=15), DIT_SCHEDULE)
    assert [p.index for p in plan.steps] == list(range(14, -1, -1))
    assert plan.init_timestep == round(10 * 999 / 49) == 204
    aligned = build_schedule(RecoverConfig(t_init=10, steps=15, align=True), DIT_SCHEDULE)
    assert aligned.steps[0].index == 10 and len(aligned.steps) == 11


def test_forward_noise_matches_diffusers_add_noise():
    plan = build_schedule(RecoverConfig(t_init=20, steps=20), DIT_SCHEDULE)
    sched = _diffusers_ddpm()
    z, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    ours = plan.init_alpha_bar ** 0.5 * z + (1 - plan.init_alpha_bar) ** 0.5 * eps
    theirs = sched.add_noise(z, eps, torch.tensor([plan.init_timestep]))
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)


def test_fusion_concrete_phase_and_guidance_window():
    plan = build_schedule(RecoverConfig(t_init=10, steps=15, guidance_scale=0.5), DIT_SCHEDULE)  # window 0:6
    for p in plan.steps:
        assert p.conditional == (p.index <= 6)
        assert p.cfg_scale == (4.0 if p.index <= 6 else 1.0)
        assert p.guidance == (0.5 if p.index <= 6 else 0.0)
    every = build_schedule(RecoverConfig(label_phase="all", guidance_window=(2, 4)), DIT_SCHEDULE)
    assert all(p.conditional for p in every.steps)
    assert [p.index for p in every.steps if p.guidance] == [4, 3, 2]


def test_ddim_update_equals_diffusers_ddim_step():
    # diffusers' DDIMScheduler assumes prev = t - 1000 // S, true for "leading" spacing; check the formula there.
    sched = DDIMScheduler(**DIT_SCHEDULE, clip_sample=False, set_alpha_to_one=True, timestep_spacing="leading")
    sched.set_timesteps(50)
    abar = sched.alphas_cumprod.double()
    x, eps = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    for t in (980, 500, 20, 0):
        prev = t - 20
        p = StepParams(0, t, float(abar[t]), float(abar[prev]) if prev >= 0 else 1.0, 0.0, 0.0, True, 4.0, 0.0)
        ours = ddim_update(predict_x0(x, eps, p), eps, p)
        theirs = sched.step(eps, t, x, eta=0.0).prev_sample
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_ddpm_update_and_learned_sigma_equal_diffusers_learned_range():
    plan = build_schedule(RecoverConfig(t_init=49, steps=50, sampler="ddpm"), DIT_SCHEDULE)
    sched = _diffusers_ddpm()
    x, out = torch.randn(2, 4, 8, 8), torch.randn(2, 8, 8, 8) * 0.5
    for p in plan.steps:
        if p.index == 0:
            continue  # diffusers adds no noise there; its unclipped variance is not used
        g = torch.Generator().manual_seed(p.index)
        theirs = sched.step(out, p.timestep, x, generator=g).prev_sample
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(p.index))
        x0 = predict_x0(x, out[:, :4], p)
        ours = ddpm_update(x, x0, learned_sigma(out[:, 4:], p), noise, p)
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_sigma_at_the_last_step_is_clipped_as_in_dit():
    plan = build_schedule(RecoverConfig(t_init=49, steps=50), DIT_SCHEDULE)
    last, before = plan.steps[-1], plan.steps[-2]
    assert last.index == 0 and last.log_posterior_var == before.log_posterior_var
    # beta_0 = 1e-4; diffusers keeps alphas_cumprod in float32, hence the tolerance.
    assert math.isclose(last.log_beta, math.log(1e-4), rel_tol=1e-4)


@pytest.mark.parametrize("kwargs", [dict(t_init=50), dict(steps=0), dict(steps=51), dict(sampler="euler"),
                                    dict(guidance_window=(3, 20)), dict(cfg_channels=2), dict(batch_size=0)])
def test_bad_config_is_refused(kwargs):
    with pytest.raises(ConfigError):
        RecoverConfig(**kwargs)


def test_method_presets():
    c = RecoverConfig.from_preset("ncfm", 10, "predd", guidance_scale=0.0)
    assert (c.t_init, c.steps, c.guidance_scale) == (30, 35, 0.0)
    assert RecoverConfig.from_preset("dm", 50, "predd").t_init == 20
    assert RecoverConfig.from_preset("dm", 50, "imagenet") == RecoverConfig.from_preset("dm", 50, "predd")


def test_the_paper_preset_is_the_papers_schedule():
    """t_f = 25, t_r = 50 (all 50 steps from index 49, tau 999), guidance 0.1 on x_t in [25, 40] only, labels with
    CFG on every step; NCFM's gamma 0.02; the same for every method and IPC."""
    c = RecoverConfig.from_preset(None, 1)        # the default table is the paper's
    assert (c.t_init, c.effective_steps, c.window, c.guidance_scale, c.guidance_target, c.label_phase) == \
        (25, 50, (25, 40), 0.1, "xt", "all")
    assert RecoverConfig.from_preset("mtt", 10) == RecoverConfig.from_preset("dm", 1) == c
    assert RecoverConfig.from_preset("ncfm", 1).guidance_scale == 0.02
    s = build_schedule(c, DIT_SCHEDULE)
    assert s.init_timestep == 510 and s.steps[0].index == 49 and s.steps[0].timestep == 999
    assert len(s.steps) == 50 and all(p.conditional and p.cfg_scale == 4.0 for p in s.steps)
    guided = [p.index for p in s.steps if p.guidance > 0]
    assert guided == list(range(40, 24, -1)) and all(p.guidance == 0.1 for p in s.steps if p.guidance > 0)


def test_presets_refuse_what_they_cannot_fill():
    with pytest.raises(ConfigError, match="per method"):
        RecoverConfig.from_preset(None, 1, "predd")
    for bad in [dict(method="dm", ipc=0), dict(method="dm", ipc=True), dict(method=42, ipc=1),
                dict(method="dm", ipc=1, table="paperz")]:
        with pytest.raises(ConfigError):
            RecoverConfig.from_preset(**bad)
