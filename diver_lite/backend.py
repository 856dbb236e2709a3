"""Where the networks run. A backend holds the DiT and the VAE and offers, on its own array type (torch tensors on
a device, or numpy arrays for ONNX Runtime):

    asarray(np) -> array, numpy(array) -> np           moving data in and out
    encode(x: np [B, 3, S, S]) -> (mean, std)           the VAE posterior moments, unscaled
    decode(z: array) -> np [B, 3, S, S]                 the VAE decoder on unscaled latents
    denoiser                                             the sampler's call (see sampler.py)
    image_size, latent_channels, scaling_factor, null_class, num_classes, schedule, source
    describe(), device_name(), peak_memory(), synchronize()

`TorchBackend` is the reference; `diver_lite.export.ort.OrtBackend` runs exported graphs without torch.
"""

import numpy as np
import torch

from .denoiser import TorchDenoiser
from .models import DiverModels


class TorchBackend:
    name = "torch"

    def __init__(self, models: DiverModels, cfg_channels: int = 3):
        self.models = models
        self.denoiser = TorchDenoiser(models.transformer, models.null_class, cfg_channels)
        for attr in ("image_size", "latent_channels", "latent_size", "scaling_factor", "null_class",
                     "num_classes", "schedule", "source"):
            setattr(self, attr, getattr(models, attr))

    @property
    def device(self) -> torch.device:
        return self.models.device

    def asarray(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def numpy(self, x: torch.Tensor) -> np.ndarray:
        return x.detach().float().cpu().numpy()

    @torch.no_grad()
    def encode(self, x: np.ndarray):
        vae = self.models.vae
        dist = vae.encode(self.asarray(x).to(next(vae.parameters()).dtype)).latent_dist
        return dist.mean.float(), dist.std.float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> np.ndarray:
        vae = self.models.vae
        return self.numpy(vae.decode(z.to(next(vae.parameters()).dtype)).sample)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        return self.models.describe()

    def device_name(self) -> str:
        from .report import torch_device_name

        return torch_device_name(self.device)

    def provider(self) -> str:
        return f"torch-{self.device.type}"

    def peak_memory(self) -> dict:
        if self.device.type == "cuda":
            return {"cuda_peak_allocated_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
        return {}
