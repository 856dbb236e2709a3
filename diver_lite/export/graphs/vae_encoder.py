"""vae_encoder.onnx: an image in [-1, 1] -> the posterior's (mean, std). Kept in fp32: the VAE is a small share of
the time and fp16 overflows in it."""

import torch

from diver_lite.export.graph_spec import GraphSpec


class VAEEncoderGraph(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        dist = self.vae.encode(image).latent_dist
        return dist.mean, dist.std


def example(models, batch: int) -> tuple:
    g = torch.Generator().manual_seed(batch)
    torch.randn(batch, models.latent_channels, models.latent_size, models.latent_size, generator=g)  # as before
    torch.randint(0, models.num_classes, (batch,), generator=g)
    return (torch.rand(batch, 3, models.image_size, models.image_size, generator=g) * 2 - 1,)


ENTRY = GraphSpec("vae_encoder", ("image",), ("mean", "std"),
                  module=lambda models, cfg_channels, sigma_scaling, guidance_target: VAEEncoderGraph(models.vae), example=example,
                  converts=False, order=2)
