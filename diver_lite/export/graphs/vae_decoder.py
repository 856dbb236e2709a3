"""vae_decoder.onnx: latent / scaling -> image. Kept in fp32 (fp16 overflows in the decoder)."""

import torch

from diver_lite.export.graph_spec import GraphSpec


class VAEDecoderGraph(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent):
        return self.vae.decode(latent).sample


def example(models, batch: int) -> tuple:
    g = torch.Generator().manual_seed(batch)
    return (torch.randn(batch, models.latent_channels, models.latent_size, models.latent_size, generator=g),)


ENTRY = GraphSpec("vae_decoder", ("latent",), ("image",),
                  module=lambda models, cfg_channels, sigma_scaling, guidance_target: VAEDecoderGraph(models.vae), example=example,
                  converts=False, order=3)
