"""The torch DiT behind the sampler's denoiser call (guidance.cfg_denoise does the CFG)."""

import torch

from .guidance import cfg_denoise


class TorchDenoiser:
    def __init__(self, transformer: torch.nn.Module, null_class: int, cfg_channels: int = 3):
        self.transformer = transformer
        self.null_class = null_class
        self.cfg_channels = cfg_channels

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def _run(self, x: torch.Tensor, timestep: int, labels: torch.Tensor) -> torch.Tensor:
        t = torch.full((x.shape[0],), timestep, dtype=torch.long, device=self.device)
        out = self.transformer(x.to(self.device, self.dtype), timestep=t, class_labels=labels.to(self.device))
        return out.sample.float()                                      # [B, 2C, h, w]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, timestep: int, class_labels: torch.Tensor | None, cfg_scale: float):
        null = torch.full((x.shape[0],), self.null_class, dtype=torch.long, device=self.device)
        labels = None if class_labels is None else class_labels.long().to(self.device)
        return cfg_denoise(self._run, torch.cat, x.to(self.device), timestep, labels, null, cfg_scale,
                           self.cfg_channels)
