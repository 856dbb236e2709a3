"""tiny-random: a 2-layer DiT and a small VAE of DiT-XL/2's diffusers classes, for trying the tool and for tests
(never for results)."""

import torch

from diver_lite.models.diver_models import DIT_SCHEDULE, SD_VAE_SCALING, DiverModels
from diver_lite.models.tying import equalize_embedders

TINY_RANDOM = "tiny-random"


def build_tiny_models(seed: int = 0, num_classes: int = 1000, image_size: int = 32) -> DiverModels:
    """A 2-layer DiT and a small VAE of the same diffusers classes and latent layout as DiT-XL/2 + sd-vae
    (4-channel latent at image_size / 8, learned sigma), with random weights from `seed`."""
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=image_size,
                        scaling_factor=SD_VAE_SCALING)
    transformer = DiTTransformer2DModel(num_attention_heads=2, attention_head_dim=8, in_channels=4,
                                        out_channels=8, num_layers=2, sample_size=image_size // 8, patch_size=2,
                                        num_embeds_ada_norm=num_classes, norm_num_groups=1)
    equalize_embedders(transformer)  # a real DiT has one embedder that diffusers copies into every block
    # eval(): in train mode diffusers' label embedder drops labels at random (CFG training dropout).
    return DiverModels(transformer.eval(), vae.eval(), dict(DIT_SCHEDULE), TINY_RANDOM)
