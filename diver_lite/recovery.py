"""One batch of distilled images through DIVER on torch: prepare, inherit (encode + noise), reverse, decode, map
back (SPEC §2). Pure computation on tensors; the pipeline does the reading, writing and bookkeeping."""

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from . import noise as noise_mod
from .config import RecoverConfig
from .denoiser import TorchDenoiser
from .models import DiverModels
from .prepare import from_vae_output, merge_mosaic, resize, split_mosaic, to_vae_input
from .sampler import diver_sample
from .schedule import SamplingPlan


@dataclass
class StageTimes:
    seconds: dict = field(default_factory=lambda: {"encode": 0.0, "sample": 0.0, "decode": 0.0})

    @contextmanager
    def stage(self, name: str, device: torch.device):
        start = time.perf_counter()
        yield
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _noise(seed, keys, stream, shape, device) -> torch.Tensor:
    return torch.from_numpy(noise_mod.batch_noise(seed, keys, stream, shape)).to(device)


@torch.no_grad()
def encode(models: DiverModels, x: torch.Tensor, keys, seed: int) -> torch.Tensor:
    """z_inh = scaling * (a posterior sample of VAE.encode(x)), with each image's own posterior noise."""
    vae, device = models.vae, models.device
    dtype = next(vae.parameters()).dtype
    dist = vae.encode(x.to(device, dtype)).latent_dist
    n = _noise(seed, keys, noise_mod.POSTERIOR, tuple(dist.mean.shape[1:]), device)
    return (dist.mean.float() + dist.std.float() * n) * models.scaling_factor


@torch.no_grad()
def decode(models: DiverModels, z0: torch.Tensor) -> torch.Tensor:
    dtype = next(models.vae.parameters()).dtype
    return models.vae.decode((z0 / models.scaling_factor).to(dtype)).sample.float()


def recover_batch(models: DiverModels, images: torch.Tensor, dit_labels: torch.Tensor, indices: list[int],
                  config: RecoverConfig, plan: SamplingPlan, pixel_space: str, mosaic: bool = False,
                  times: StageTimes | None = None) -> torch.Tensor:
    """images [B, C, H, W] in `pixel_space` (NCFM mosaics if `mosaic`) -> recovered [B, C, H', W'] in the same
    space; H' = H, or the model's image size with `keep_size`. dit_labels: DiT class ids [B]."""
    times = times or StageTimes()
    device, size = models.device, models.image_size
    channels, in_size = images.shape[1], images.shape[-1]
    if mosaic:  # NCFM: each 2x2 mosaic is four images, recovered one by one
        images, dit_labels = split_mosaic(images), dit_labels.repeat_interleave(4)
        keys = [(i, q) for i in indices for q in range(4)]
    else:
        keys = [(i, 0) for i in indices]

    with times.stage("encode", device):
        x = resize(to_vae_input(images.float(), pixel_space, config.pixel_range), size)
        z_inh = encode(models, x, keys, config.seed)                       # [B, 4, h, w]
    with times.stage("sample", device):
        shape = tuple(z_inh.shape[1:])
        eps = _noise(config.seed, keys, noise_mod.FORWARD, shape, device)
        denoiser = TorchDenoiser(models.transformer, models.null_class, config.cfg_channels)
        z0 = diver_sample(denoiser, z_inh, eps, dit_labels.to(device), plan,
                          step_noise=lambda i: _noise(config.seed, keys, noise_mod.step_stream(i), shape, device))
    with times.stage("decode", device):
        y = decode(models, z0)                                             # [B, 3, size, size]
        if mosaic:  # reassemble four size² results into (2 size)² and bring it back to size², as PReDD
            y = resize(merge_mosaic(y), size)
        y = from_vae_output(y, pixel_space, config.pixel_range, channels)
        if not config.keep_size:
            y = resize(y, in_size, antialias=True)
    return y.cpu()
