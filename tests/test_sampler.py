"""The DIVER reverse process on the tiny DiT: PReDD reproduced, guidance, fusion, seeds and batch independence."""

import numpy as np
import torch

from conftest import make_images
from diver_lite.core import noise
from diver_lite.core.config import RecoverConfig
from diver_lite.models.diver_models import DIT_SCHEDULE
from diver_lite.core.prepare import from_vae_output, to_vae_input
from diver_lite.core.recovery import inherit, recover_batch
from diver_lite.core.sampler import diver_sample
from diver_lite.core.schedule import build_schedule


def _recover(backend, x, labels, config, indices=None, space="imagenet"):
    indices = list(range(len(x))) if indices is None else indices
    schedule = build_schedule(config, backend.schedule)
    return recover_batch(backend, x, np.asarray(labels), indices, config, schedule, space)


def dit_numbers():
    """DiT's 50-step respaced diffusion in float64, written from its definition: tau_i, abar_i, abar_{i-1}, beta_i
    and the log posterior variance (clipped at i = 0 to i = 1's, as DiT does)."""
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    abar_full = np.cumprod(1 - betas)
    taus = [round(i * 999 / 49) for i in range(50)]
    abar = np.array([abar_full[t] for t in taus])
    abar_prev = np.append(1.0, abar[:-1])
    beta = 1 - abar / abar_prev
    post_var = beta * (1 - abar_prev) / (1 - abar)
    return taus, abar, abar_prev, beta, np.log(np.append(post_var[1], post_var[1:]))


def predd_reference(models, x, labels, keys, seed, t_init, K, cfg_scale=4.0):
    """PReDD's loop written straight from docs/algorithm.md with DiT's numpy-style diffusion (float64), independent of the
    library's schedule/guidance/sampler code: raw pixels, DDPM with learned range, 3-channel CFG, lambda = 0."""
    vae, dit, scale, null = models.vae, models.transformer, models.scaling_factor, models.null_class
    taus, abar, abar_prev, beta, post_log_var = dit_numbers()
    n = lambda stream: torch.from_numpy(noise.batch_noise(seed, keys, stream, (4, 4, 4)))  # noqa: E731
    with torch.no_grad():
        img = torch.nn.functional.interpolate(torch.from_numpy(x), size=(32, 32), mode="bilinear",
                                              align_corners=False)
        dist = vae.encode(img).latent_dist
        z = (dist.mean + dist.std * n(0)) * scale
        xt = abar[t_init] ** 0.5 * z + (1 - abar[t_init]) ** 0.5 * n(1)
        B = len(x)
        for i in range(K - 1, -1, -1):
            out = dit(torch.cat([xt, xt]), timestep=torch.full((2 * B,), taus[i]),
                      class_labels=torch.cat([labels, torch.full((B,), null)])).sample
            cond, uncond = out[:B], out[B:]
            eps = cond[:, :4].clone()
            eps[:, :3] = uncond[:, :3] + cfg_scale * (cond[:, :3] - uncond[:, :3])
            frac = (cond[:, 4:] + 1) / 2
            log_var = frac * np.log(beta[i]) + (1 - frac) * post_log_var[i]
            x0 = (xt - (1 - abar[i]) ** 0.5 * eps) / abar[i] ** 0.5
            mean = (abar_prev[i] ** 0.5 * beta[i] / (1 - abar[i])) * x0 \
                + ((1 - beta[i]) ** 0.5 * (1 - abar_prev[i]) / (1 - abar[i])) * xt
            xt = mean + (torch.exp(0.5 * log_var) * n(2 + i) if i > 0 else 0)
        return vae.decode(xt / scale).sample.numpy()


def test_lambda_0_label_phase_all_ddpm_reproduces_predd(tiny_models, tiny_backend):
    x, y = make_images(3), torch.tensor([3, 7, 1])
    config = RecoverConfig(t_init=10, steps=15, guidance_scale=0.0, label_phase="all", sampler="ddpm",
                           pixel_range="raw", keep_size=True, seed=5)
    ours = _recover(tiny_backend, x, y, config)
    ref = predd_reference(tiny_models, x, y, [(i, 0) for i in range(3)], 5, 10, 15)
    np.testing.assert_allclose(ours, ref, atol=2e-4, rtol=1e-4)


def _latent_run(models, config, z_inh, eps, labels):
    from diver_lite.backends.denoiser import TorchDenoiser

    plan = build_schedule(config, DIT_SCHEDULE)
    return diver_sample(TorchDenoiser(models.transformer, models.null_class), z_inh, eps, labels, plan)


def test_larger_lambda_pulls_the_result_toward_the_inherited_latent(tiny_models):
    g = torch.Generator().manual_seed(0)
    z_inh, eps, labels = torch.randn(4, 4, 4, 4, generator=g), torch.randn(4, 4, 4, 4, generator=g), \
        torch.tensor([0, 1, 2, 3])
    dist = [float((_latent_run(tiny_models, RecoverConfig(guidance_scale=lam, label_phase="all"), z_inh, eps,
                               labels) - z_inh).norm()) for lam in (0.0, 0.5, 1.0, 2.0)]
    assert dist[0] > dist[1] > dist[2] > dist[3], dist


def test_an_exact_denoiser_returns_the_inherited_latent(tiny_models):
    """DDIM with eps_hat that points exactly at z_inh keeps x0_pred = z_inh, so the run ends on z_inh."""
    g = torch.Generator().manual_seed(1)
    z_inh, eps = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    config = RecoverConfig(t_init=20, steps=20, guidance_scale=1.0)
    abar = {p.timestep: p.alpha_bar for p in build_schedule(config, DIT_SCHEDULE).steps}

    def oracle(x, t, labels, cfg_scale):
        e = (x - abar[t] ** 0.5 * z_inh) / (1 - abar[t]) ** 0.5
        return torch.cat([e, torch.zeros_like(e)], 1)

    out = diver_sample(oracle, z_inh, eps, None, build_schedule(config, DIT_SCHEDULE))
    torch.testing.assert_close(out, z_inh, atol=1e-5, rtol=1e-5)


def test_t_init_0_gives_the_vae_reconstruction(tiny_backend):
    x, y = make_images(2), torch.tensor([1, 2])
    config = RecoverConfig(t_init=0, steps=1, cfg_scale=1.0, guidance_scale=0.0, seed=3)
    out = _recover(tiny_backend, x, y, config)
    z = inherit(tiny_backend, to_vae_input(x, "imagenet", "auto"), [(0, 0), (1, 0)], 3)
    recon = from_vae_output(tiny_backend.decode(z / tiny_backend.scaling_factor), "imagenet", "auto", 3)
    far = _recover(tiny_backend, x, y, config.replace(t_init=30, steps=31))
    err, err_far = np.abs(out - recon).mean(), np.abs(far - recon).mean()
    assert err < 0.1 * err_far, (err, err_far)


def test_fusion_runs_unconditional_steps_before_the_concrete_phase():
    calls = []

    def spy(x, t, labels, cfg_scale):
        calls.append((t, labels is None, cfg_scale))
        return torch.zeros(x.shape[0], 2 * x.shape[1], *x.shape[2:])

    plan = build_schedule(RecoverConfig(t_init=10, steps=6, cfg_scale=3.0), DIT_SCHEDULE)  # window 0:2
    diver_sample(spy, torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 2, 2), torch.tensor([5]), plan)
    assert [c[0] for c in calls] == [round(i * 999 / 49) for i in range(5, -1, -1)]
    assert [c[1] for c in calls] == [True, True, True, False, False, False]
    assert [c[2] for c in calls] == [1.0, 1.0, 1.0, 3.0, 3.0, 3.0]


def test_each_image_has_its_own_seed_stream(tiny_backend):
    x, y = make_images(4), np.array([0, 1, 2, 3])
    config = RecoverConfig(sampler="ddpm")
    full = _recover(tiny_backend, x, y, config)
    perm = [2, 0, 3, 1]
    # Same batch shape, other order: bit for bit.
    assert np.array_equal(_recover(tiny_backend, x[perm], y[perm], config, indices=perm), full[perm])
    # Batch 1 vs batch 4: the same noise; BLAS picks other kernels for other batch sizes, so equal to fp32 rounding.
    singles = np.concatenate([_recover(tiny_backend, x[i:i + 1], y[i:i + 1], config, indices=[i])
                              for i in range(4)])
    np.testing.assert_allclose(singles, full, atol=1e-4, rtol=1e-4)
    # Another seed gives another result.
    assert not np.allclose(_recover(tiny_backend, x, y, config.replace(seed=1)), full)


def test_ncfm_mosaics_come_back_as_mosaics_of_the_input_size(tiny_backend):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    plan = build_schedule(RecoverConfig(), DIT_SCHEDULE)
    out = recover_batch(tiny_backend, x, np.array([1, 2]), [0, 1], RecoverConfig(), plan, "unit", mosaic=True)
    assert out.shape == (2, 3, 64, 64) and np.isfinite(out).all()
    # Each quadrant is recovered on its own: changing one input quadrant leaves the other three alone.
    x2 = x.copy()
    x2[0, :, :32, :32] = 0.0
    out2 = recover_batch(tiny_backend, x2, np.array([1, 2]), [0, 1], RecoverConfig(), plan, "unit", mosaic=True)
    assert not np.allclose(out2[0, :, :8, :8], out[0, :, :8, :8])
    np.testing.assert_allclose(out2[0, :, 40:, 40:], out[0, :, 40:, 40:], atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(out2[1], out[1], atol=1e-4, rtol=1e-4)


def paper_reference(models, z_inh, eps, labels, t_f=25, window=(25, 40), gamma=0.1, cfg_scale=4.0, target="xt"):
    """The DIVER paper's reverse process written from its equation, independent of the library: z_inh noised to
    index t_f, all 50 DDIM steps from index 49 (tau 999), labels with 3-channel CFG on every step, and inside the
    window x_{i-1} <- DDIM(x_i) - gamma sigma_i (x_i - z_inh) (target "xt"), or (x0_pred - z_inh) ("x0", PReDD)."""
    dit, null = models.transformer, models.null_class
    taus, abar, abar_prev, beta, post_log_var = dit_numbers()
    B = len(z_inh)
    with torch.no_grad():
        x = abar[t_f] ** 0.5 * z_inh + (1 - abar[t_f]) ** 0.5 * eps
        for i in range(49, -1, -1):
            out = dit(torch.cat([x, x]), timestep=torch.full((2 * B,), taus[i]),
                      class_labels=torch.cat([labels, torch.full((B,), null)])).sample
            cond, uncond = out[:B], out[B:]
            e = cond[:, :4].clone()
            e[:, :3] = uncond[:, :3] + cfg_scale * (cond[:, :3] - uncond[:, :3])
            frac = (cond[:, 4:] + 1) / 2
            sigma = torch.exp(0.5 * (frac * np.log(beta[i]) + (1 - frac) * post_log_var[i]))
            x0 = (x - (1 - abar[i]) ** 0.5 * e) / abar[i] ** 0.5
            nxt = abar_prev[i] ** 0.5 * x0 + (1 - abar_prev[i]) ** 0.5 * e
            if window[0] <= i <= window[1]:
                nxt = nxt - gamma * sigma * ((x if target == "xt" else x0) - z_inh)
            x = nxt
        return x


def test_the_paper_preset_runs_the_papers_equation_and_x0_runs_predds(tiny_models):
    """--presets paper (guidance on the running latent) against the paper's loop written here from its equation;
    --guidance-target x0 against the same loop pulling x0_pred; the two differ."""
    g = torch.Generator().manual_seed(3)
    z_inh, eps, labels = torch.randn(3, 4, 4, 4, generator=g), torch.randn(3, 4, 4, 4, generator=g), \
        torch.tensor([2, 5, 9])
    paper = RecoverConfig.from_preset(None, 1, "paper")
    ours_xt = _latent_run(tiny_models, paper, z_inh, eps, labels)
    ours_x0 = _latent_run(tiny_models, paper.replace(guidance_target="x0"), z_inh, eps, labels)
    torch.testing.assert_close(ours_xt, paper_reference(tiny_models, z_inh, eps, labels, target="xt").float(),
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours_x0, paper_reference(tiny_models, z_inh, eps, labels, target="x0").float(),
                               atol=1e-4, rtol=1e-4)
    assert float((ours_xt - ours_x0).abs().max()) > 1e-3


def test_the_controls_do_what_they_say(tiny_backend):
    """round-trip: the VAE alone (what t_init 0 gave, without the DiT); raw-dit: samples that do not depend on the
    input; projection-grey: clip to [0, 1] in pixels and the channel mean, no model."""
    from diver_lite.core.prepare import from_unit, to_unit

    x, y = make_images(3), np.array([1, 2, 3])
    base = RecoverConfig(seed=4, keep_size=True)
    trip = _recover(tiny_backend, x, y, base.replace(control="round-trip"))
    z = inherit(tiny_backend, to_vae_input(x, "imagenet", "auto"), [(i, 0) for i in range(3)], 4)
    direct = from_vae_output(tiny_backend.decode(z / tiny_backend.scaling_factor), "imagenet",
                             "auto", 3)
    np.testing.assert_allclose(trip, direct, atol=1e-6)
    raw = _recover(tiny_backend, x, y, base.replace(control="raw-dit"))
    raw_other_input = _recover(tiny_backend, -x, y, base.replace(control="raw-dit"))
    np.testing.assert_allclose(raw, raw_other_input, atol=1e-5)          # no inheritance: the input plays no part
    assert not np.allclose(raw, trip, atol=1e-2)
    wild = x * 3
    proj = _recover(tiny_backend, wild, y, base.replace(control="projection-grey"), space="imagenet")
    unit = to_unit(proj, "imagenet")
    assert unit.min() >= -1e-6 and unit.max() <= 1 + 1e-6
    np.testing.assert_allclose(unit[:, 0], unit[:, 2], atol=1e-6)
    expected = np.clip(to_unit(wild, "imagenet"), 0, 1).mean(axis=1)
    np.testing.assert_allclose(unit[:, 1], expected, atol=1e-5)
    clip_only = to_unit(_recover(tiny_backend, wild, y, base.replace(control="projection")), "imagenet")
    np.testing.assert_allclose(clip_only, np.clip(to_unit(wild, "imagenet"), 0, 1), atol=1e-5)
    np.testing.assert_allclose(from_unit(clip_only, "imagenet"),
                               _recover(tiny_backend, wild, y, base.replace(control="projection")), atol=1e-6)
