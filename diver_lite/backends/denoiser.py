"""The torch DiT behind the sampler's denoiser call (guidance.cfg_denoise does the CFG)."""

from collections.abc import Callable

import torch

from diver_lite.backends.overflow import run_finite
from diver_lite.core.guidance import cfg_denoise


class TorchDenoiser:
    """`before()` runs ahead of each call (an offload placement making the DiT resident). A 16-bit DiT whose
    output is not finite is, with `fallback` (a dtype to convert the DiT to), re-run there with a warning."""

    def __init__(self, transformer: torch.nn.Module, null_class: int, cfg_channels: int = 3,
                 device: torch.device | None = None, dtype: torch.dtype | None = None,
                 before: Callable[[], None] | None = None, fallback: torch.dtype | None = None):
        self.transformer = transformer
        self.null_class = null_class
        self.cfg_channels = cfg_channels
        self.device = device or next(transformer.parameters()).device
        self.dtype = dtype or next(transformer.parameters()).dtype
        self.before = before or (lambda: None)
        self.fallback = fallback

    def _forward(self, x: torch.Tensor, timestep: int, labels: torch.Tensor) -> torch.Tensor:
        t = torch.full((x.shape[0],), timestep, dtype=torch.long, device=self.device)
        out = self.transformer(x.to(self.device, self.dtype), timestep=t, class_labels=labels.to(self.device))
        # [B, 2C, h, w], always a copy: a compiled DiT's output lives in CUDA-graph memory that the next call
        # overwrites (memory/tactics/compile.py).
        return out.sample.to(torch.float32, copy=True)

    def _run(self, x: torch.Tensor, timestep: int, labels: torch.Tensor) -> torch.Tensor:
        def fell_back(dtype: torch.dtype) -> None:
            self.dtype = dtype

        (out,) = run_finite(lambda: (self._forward(x, timestep, labels),), f"the DiT at timestep {timestep}",
                            self.transformer, self.fallback, "run with --precision fp32 (or bf16 on CUDA)", fell_back)
        return out

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, timestep: int, class_labels: torch.Tensor | None, cfg_scale: float):
        self.before()
        null = torch.full((x.shape[0],), self.null_class, dtype=torch.long, device=self.device)
        labels = None if class_labels is None else class_labels.long().to(self.device)
        return cfg_denoise(self._run, torch.cat, x.to(self.device), timestep, labels, null, cfg_scale,
                           self.cfg_channels)
