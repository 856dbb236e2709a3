"""The torch DiT behind the sampler's denoiser call: CFG on the doubled batch [x; x] with labels [y; null]."""

import torch

from .guidance import cfg_combine


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
        B = x.shape[0]
        null = torch.full((B,), self.null_class, dtype=torch.long)
        if class_labels is None:
            return self._run(x, timestep, null)
        if cfg_scale == 1.0:
            return self._run(x, timestep, class_labels)
        out = self._run(torch.cat([x, x]), timestep, torch.cat([class_labels.long().cpu(), null]))
        # Slice by B (not chunk(2)) so an exported graph keeps a symbolic batch dimension.
        return cfg_combine(out[:B], out[B:], cfg_scale, self.cfg_channels).to(x.device)
