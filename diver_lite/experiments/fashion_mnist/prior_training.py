"""Training the embedded default prior: a small AutoencoderKL and a small class-conditional, learned-sigma
DiTTransformer2DModel (the diffusers classes of DiT-XL/2 and sd-vae), on Fashion-MNIST, from a seed.

The DiT is trained as DiT was: epsilon MSE plus the variational-bound term that teaches the variance channels
(the "hybrid" loss of improved DDPM, the eps channels frozen inside the VB term), 10 % label dropout to the null
class for CFG, AdamW, an EMA of the weights. No I/O: the CLI writes what these functions return."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from diver_lite.models.diver_models import DIT_SCHEDULE, DiverModels
from diver_lite.models.tying import equalize_embedders, tie_embedders
from diver_lite.core.schedule import alphas_cumprod
from diver_lite.core.metrics import psnr_from_mse
from diver_lite.experiments.loop_state import Batches, resume, snapshot


@dataclass(frozen=True)
class PriorConfig:
    seed: int = 0
    # 2 levels: 32x32 images -> 4 x 16 x 16 latents. Three levels (4 x 8 x 8, the first prior) reconstruct at
    # 24.9 dB after 1500 steps and 27.8 dB after 6000 (docs/benchmarks/prior.md): the bottleneck, not the training, caps it.
    vae_channels: tuple[int, ...] = (32, 64)
    image_size: int = 32                           # the VAE's sample size (a multiple of 8)
    vae_steps: int = 2000
    vae_batch: int = 64
    vae_lr: float = 1e-3
    vae_kl_weight: float = 1e-6
    dit_hidden: int = 128
    dit_heads: int = 4
    dit_depth: int = 6
    dit_patch: int = 4                             # 16 x 16 latents -> 16 tokens, as 8 x 8 at patch 2
    dit_steps: int = 14000
    dit_batch: int = 128
    dit_lr: float = 5e-4
    dit_lr_schedule: str = "constant"              # after the warm-up: "constant", or "cosine" down to zero
    ema_decay: float = 0.999
    label_dropout: float = 0.1                     # diffusers' LabelEmbedding default, as DiT trains
    continued_from: str = ""                       # a prior folder whose VAE is kept and whose DiT trains on


def build_vae(cfg: PriorConfig):
    from diffusers import AutoencoderKL

    n = len(cfg.vae_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=cfg.vae_channels,
                         down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                         layers_per_block=1, norm_num_groups=32, sample_size=cfg.image_size)


def build_dit(cfg: PriorConfig, latent_size: int, num_classes: int = 10):
    from diffusers import DiTTransformer2DModel

    return DiTTransformer2DModel(num_attention_heads=cfg.dit_heads, attention_head_dim=cfg.dit_hidden // cfg.dit_heads,
                                 in_channels=4, out_channels=8, num_layers=cfg.dit_depth, sample_size=latent_size,
                                 patch_size=cfg.dit_patch, num_embeds_ada_norm=num_classes, norm_num_groups=32)


def train_vae(images: np.ndarray, cfg: PriorConfig, log: Callable[[int, float], None] | None = None,
              device: str | torch.device = "cpu", checkpoint=None):
    """images: float32 [N, 3, 32, 32] in [0, 1]. L1 reconstruction + a small KL, as the SD VAEs (without their
    GAN and LPIPS terms). Afterwards scaling_factor = 1 / std of the latents, as for sd-vae (0.18215). The random
    draws (batches, posterior samples) come from one CPU generator on any device. `checkpoint`: a
    pipeline.checkpoint.Checkpoint to resume from and save to (the result is the same, interrupted or not)."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    vae = build_vae(cfg).to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.vae_steps)
    x_all = (torch.from_numpy(images) * 2 - 1).to(device)
    history, batches, first = [], Batches(len(x_all), cfg.vae_batch, g), 0
    parts = {"vae": vae, "opt": opt, "sched": sched, "batches": batches}
    saved = checkpoint.load() if checkpoint else None
    if saved:
        first, history = resume(saved, parts, g)
    for step in range(first, cfg.vae_steps):
        x = x_all[batches.next().to(device)]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample    # a CPU generator: diffusers draws on the CPU
        loss = (rec - x).abs().mean() + cfg.vae_kl_weight * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if log and (step % 100 == 0 or step == cfg.vae_steps - 1):
            log(step, float(loss.detach()))
        if checkpoint and (checkpoint.due() or step == cfg.vae_steps - 1):
            checkpoint.save(snapshot(step + 1, history, parts, g))
    vae.eval()
    with torch.no_grad():
        means = torch.cat([vae.encode(x_all[i:i + 256]).latent_dist.mean for i in range(0, min(4096, len(x_all)), 256)])
    vae.register_to_config(scaling_factor=float(1.0 / means.std()))
    return vae, history


def encode_all(vae, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Scaled posterior means of every image (the DiT trains on these, as DiT trains on sd-vae latents), on the
    VAE's device."""
    x_all = (torch.from_numpy(images) * 2 - 1).to(next(vae.parameters()).device)
    with torch.no_grad():
        return torch.cat([vae.encode(x_all[i:i + batch]).latent_dist.mean
                          for i in range(0, len(x_all), batch)]) * vae.config.scaling_factor


def _normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def hybrid_loss(model_output, x0, x_t, t, noise, abar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mse, vb): eps MSE, and the VB term in bits per dimension with the eps prediction detached, on the full
    1000-step chain. At t = 0 the VB term is the Gaussian negative log-likelihood of x0 (latents are not 8-bit)."""
    C = x0.shape[1]
    eps, v = model_output[:, :C], model_output[:, C:]
    mse = ((eps - noise) ** 2).mean(dim=(1, 2, 3))
    shape = (-1, 1, 1, 1)
    a = abar[t].view(shape)
    a_prev = torch.where(t > 0, abar[(t - 1).clamp(min=0)], torch.ones_like(abar[t])).view(shape)
    beta = 1 - a / a_prev
    post_var = beta * (1 - a_prev) / (1 - a)
    post_var_1 = ((1 - abar[0]) / (1 - abar[1]) * (1 - abar[1] / abar[0]))
    log_post = torch.log(torch.where(t.view(shape) > 0, post_var, post_var_1))
    c1, c2 = a_prev.sqrt() * beta / (1 - a), (1 - beta).sqrt() * (1 - a_prev) / (1 - a)
    mean_q = c1 * x0 + c2 * x_t
    x0_pred = (x_t - (1 - a).sqrt() * eps.detach()) / a.sqrt()
    mean_p = c1 * x0_pred + c2 * x_t
    frac = (v + 1) / 2
    logvar_p = frac * torch.log(beta) + (1 - frac) * log_post
    kl = _normal_kl(mean_q, log_post, mean_p, logvar_p).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = (0.5 * (math.log(2 * math.pi) + logvar_p + (x0 - mean_p) ** 2 * torch.exp(-logvar_p))).mean(
        dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    return mse.mean(), vb.mean()


def lr_factor(step: int, cfg: PriorConfig) -> float:
    """The DiT's learning rate over its steps, as a factor of cfg.dit_lr: a linear warm-up (500 steps, or a tenth of
    a shorter run), then constant or a cosine down to zero at the last step."""
    warmup = min(500, cfg.dit_steps // 10)
    rise = min(1.0, (step + 1) / max(1, warmup))
    if cfg.dit_lr_schedule == "cosine":
        return rise * 0.5 * (1 + math.cos(math.pi * step / cfg.dit_steps))
    return rise


def train_dit(latents: torch.Tensor, labels: np.ndarray, cfg: PriorConfig, num_classes: int = 10,
              log: Callable[[int, float, float], None] | None = None, start: torch.nn.Module | None = None,
              checkpoint=None):
    """Returns (EMA DiT, history of (mse, vb)), trained on the latents' device; the random draws (batches, t, noise)
    come from one CPU generator on any device. `start`: a DiT of cfg's size whose weights training continues from
    (its optimizer state is not kept: AdamW and the EMA start afresh from these weights, after a new warm-up).
    `checkpoint`: as train_vae's."""
    device = latents.device
    torch.manual_seed(cfg.seed + 1)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    # Train one shared embedder (DiT has one; diffusers keeps a copy per block), so the saved copies stay equal
    # and tie again after loading.
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    dit = build_dit(cfg, latents.shape[-1], num_classes)
    if start is not None:
        dit.load_state_dict(start.state_dict())
    dit = dit.to(device).train()
    equalize_embedders(dit)
    tie_embedders(dit)
    ema = AveragedModel(dit, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))   # a copy, embedders tied too
    opt = torch.optim.AdamW(dit.parameters(), lr=cfg.dit_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    abar = torch.from_numpy(alphas_cumprod(DIT_SCHEDULE)).to(device)
    y_all = torch.from_numpy(labels).long().to(device)
    history, batches, first = [], Batches(len(latents), cfg.dit_batch, g), 0
    parts = {"dit": dit, "ema": ema, "opt": opt, "sched": sched, "batches": batches}
    saved = checkpoint.load() if checkpoint else None
    if saved:
        first, history = resume(saved, parts, g)
        history = [tuple(h) for h in history]
    for step in range(first, cfg.dit_steps):
        idx = batches.next().to(device)
        x0, y = latents[idx], y_all[idx]
        t = torch.randint(0, len(abar), (len(idx),), generator=g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        a = abar[t].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        out = dit(x_t, timestep=t, class_labels=y).sample           # train mode: labels dropped at 10 %
        mse, vb = hybrid_loss(out, x0, x_t, t, noise, abar)
        opt.zero_grad(set_to_none=True)
        (mse + vb).backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        sched.step()
        ema.update_parameters(dit)
        history.append((float(mse.detach()), float(vb.detach())))
        if log and (step % 200 == 0 or step == cfg.dit_steps - 1):
            log(step, *history[-1])
        if checkpoint and (checkpoint.due() or step == cfg.dit_steps - 1):
            checkpoint.save(snapshot(step + 1, history, parts, g))
    return ema.module.eval().requires_grad_(False), history


def sample(models: DiverModels, labels: np.ndarray, cfg_scale: float = 4.0, steps: int = 50, seed: int = 0,
           batch: int = 250) -> np.ndarray:
    """Class-conditional samples in [0, 1] (float32 [N, 3, H, W]): DDIM from pure noise through the same sampler
    that recovers (t_init = K - 1 = S - 1 from a zero latent, no semantic guidance, labels on every step)."""
    from diver_lite.backends.torch_backend import TorchBackend
    from diver_lite.core.config import RecoverConfig
    from diver_lite.core.noise import batch_noise
    from diver_lite.core.sampler import diver_sample
    from diver_lite.core.schedule import build_schedule

    backend = TorchBackend(models)
    config = RecoverConfig(t_init=steps - 1, steps=steps, num_sampling_steps=steps, guidance_scale=0.0,
                           label_phase="all", cfg_scale=cfg_scale)
    plan = build_schedule(config, models.schedule)
    out = []
    shape = (models.latent_channels, models.latent_size, models.latent_size)
    for lo in range(0, len(labels), batch):
        keys = [(i, 0) for i in range(lo, min(lo + batch, len(labels)))]
        eps = backend.asarray(batch_noise(seed, keys, 1, shape))
        z = diver_sample(backend.denoiser, eps * 0, eps, backend.asarray(labels[lo:lo + batch].astype(np.int64)),
                         plan)
        out.append(backend.decode(z / models.scaling_factor))
    return np.clip((np.concatenate(out) + 1) / 2, 0, 1)


def reconstruction_psnr(vae, images: np.ndarray, batch: int = 50) -> float:
    """PSNR (dB, images in [0, 1]) of VAE reconstructions through the posterior mean, over all `images` (in
    batches of `batch`: on one CPU thread, batches of 50 run twice as fast as 1,000 at once, the activations
    staying in cache)."""
    device = next(vae.parameters()).device
    squared = 0.0
    for i in range(0, len(images), batch):
        x = (torch.from_numpy(images[i:i + batch]) * 2 - 1).to(device)
        with torch.no_grad():
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        squared += float(F.mse_loss((rec + 1) / 2, (x + 1) / 2, reduction="sum"))
    return float(psnr_from_mse(squared / images.size))


def evaluate_prior(models: DiverModels, test_images: np.ndarray, test_labels: np.ndarray, classifier,
                   per_class: int = 100, cfg_scale: float = 4.0, seed: int = 0) -> tuple[dict, np.ndarray]:
    """The quality bar of the embedded default: a classifier trained on real images labels the prior's
    class-conditional samples; also the VAE's reconstruction PSNR on real test images."""
    from diver_lite.experiments.fashion_mnist.students import predict

    labels = np.repeat(np.arange(models.num_classes), per_class)
    samples = sample(models, labels, cfg_scale=cfg_scale, seed=seed)
    metrics = {
        "classifier_real_test_accuracy": float((predict(classifier, test_images) == test_labels).mean()),
        "sample_accuracy": float((predict(classifier, samples) == labels).mean()),
        "samples": int(len(labels)), "cfg_scale": cfg_scale, "sampler": "DDIM, 50 steps",
        "vae_reconstruction_psnr_db": reconstruction_psnr(models.vae, test_images[:1000]),
    }
    return metrics, samples
