"""The torch backend (the reference): the diffusers DiT and VAE under a runtime placement (memory/), behind the
Backend protocol (base.py). A 16-bit VAE or DiT that overflows is re-run in fp32 with a warning."""

import numpy as np
import torch

from diver_lite.backends.denoiser import TorchDenoiser
from diver_lite.backends.overflow import run_finite
from diver_lite.models.diver_models import DiverModels


class TorchBackend:
    """`placement`: an offload placement (offload.py) told which component runs next; `runtime`: what
    runtime.build_runtime made, reported by describe(). A 16-bit VAE or DiT that overflows (non-finite output)
    is re-run in fp32 with a warning when nothing is offloaded."""

    name = "torch"
    guided_step = None            # the sampler runs each step (only ONNX Runtime has an exported one)

    def __init__(self, models: DiverModels, cfg_channels: int = 3, placement=None, device=None, runtime=None):
        self.models = models
        self.placement = placement
        self.runtime = runtime
        self.warnings: list[str] = []
        self._device = torch.device(device) if device is not None else models.device
        plain = placement is None or getattr(placement, "name", "none") == "none"
        lowbit = runtime is not None and runtime.quantized_layers > 0
        dtype = next(models.transformer.parameters()).dtype
        fallback = torch.float32 if plain and not lowbit and dtype != torch.float32 else None
        self.denoiser = TorchDenoiser(models.transformer, models.null_class, cfg_channels, self._device, dtype,
                                      before=lambda: self._activate("transformer"), fallback=fallback)
        self._vae_fallback = plain and next(models.vae.parameters()).dtype != torch.float32
        for attr in ("image_size", "latent_channels", "latent_size", "scaling_factor", "null_class",
                     "num_classes", "schedule", "source"):
            setattr(self, attr, getattr(models, attr))

    @property
    def device(self) -> torch.device:
        return self._device

    def _activate(self, component: str) -> None:
        if self.placement is not None:
            self.placement.activate(component)

    def asarray(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def numpy(self, x: torch.Tensor) -> np.ndarray:
        return x.detach().float().cpu().numpy()

    def _vae_call(self, what: str, fn, x: torch.Tensor):
        vae = self.models.vae

        def fell_back(dtype: torch.dtype) -> None:
            self._vae_fallback = False

        return run_finite(lambda: fn(x.to(self.device, next(vae.parameters()).dtype)), f"the VAE {what}", vae,
                          torch.float32 if self._vae_fallback else None, "run the VAE in fp32 (--vae-precision fp32)",
                          fell_back)

    @torch.no_grad()
    def encode(self, x: np.ndarray):
        self._activate("encoder")

        def run(v):
            dist = self.models.vae.encode(v).latent_dist
            return dist.mean.float(), dist.std.float()

        return self._vae_call("encoder", run, self.asarray(x))

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> np.ndarray:
        self._activate("decoder")
        (y,) = self._vae_call("decoder", lambda v: (self.models.vae.decode(v).sample,), z)
        return self.numpy(y)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        out = self.models.describe()
        out["dtype"] = str(self.denoiser.dtype).replace("torch.", "")
        if self.runtime is not None:
            out["plan"] = self.runtime.plan.to_dict() | {"label": self.runtime.plan.label}
            out["int8_layers"] = self.runtime.int8_layers
            out["quantized_layers"] = self.runtime.quantized_layers
        return out

    def device_name(self) -> str:
        from diver_lite.machine import torch_device_name

        return torch_device_name(self.device)

    def provider(self) -> str:
        return f"torch-{self.device.type}"

    def peak_memory(self) -> dict:
        if self.device.type == "cuda":
            return {"cuda_peak_allocated_mb": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)}
        return {}

    def check_config(self, config) -> None:
        """Every setting runs on torch."""
