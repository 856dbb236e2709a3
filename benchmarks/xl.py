"""DiT-XL/2 and the sd-vae-ft-mse architecture with random weights: for time and memory, never for quality."""

import torch

from diver_lite.models.diver_models import DIT_SCHEDULE, SD_VAE_SCALING, DiverModels
from diver_lite.models.tying import equalize_embedders


def build_xl(with_vae: bool = True) -> DiverModels:
    """diffusers' DiTTransformer2DModel defaults are the XL/2 sizes; learned sigma doubles the output channels.
    The 28 embedder copies are made equal, as in a converted checkpoint, so that tying them is exact."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    torch.manual_seed(0)
    transformer = DiTTransformer2DModel(out_channels=8)
    equalize_embedders(transformer)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                        sample_size=256, scaling_factor=SD_VAE_SCALING) if with_vae else None
    return DiverModels(transformer.eval(), vae.eval() if vae else None, dict(DIT_SCHEDULE), "random DiT-XL/2")
