"""dit.onnx: (x, timestep, class_labels) -> model_output, dynamic batch. What `--backend onnxruntime` runs: the
same sampler as torch drives it, with CFG on the doubled batch (one copy of the DIVER logic)."""

import torch

from diver_lite.export.graph_spec import GraphSpec


class DiTGraph(torch.nn.Module):
    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, x, timestep, class_labels):
        return self.transformer(x, timestep=timestep, class_labels=class_labels).sample   # [B, 2C, h, w]


def example(models, batch: int) -> tuple:
    """The CFG-doubled batch [x; x] with labels [y; 1]."""
    g = torch.Generator().manual_seed(batch)
    C, h = models.latent_channels, models.latent_size
    x = torch.randn(batch, C, h, h, generator=g)
    labels = torch.randint(0, models.num_classes, (batch,), generator=g)
    return torch.cat([x, x]), torch.full((2 * batch,), 500), torch.cat([labels, torch.full_like(labels, 1)])


ENTRY = GraphSpec("dit", ("x", "timestep", "class_labels"), ("model_output",),
                  module=lambda models, cfg_channels, sigma_scaling, guidance_target: DiTGraph(models.transformer), example=example,
                  order=0)
