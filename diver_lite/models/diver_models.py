"""DiverModels: the diffusers DiT and VAE of one recovery, with the sizes the sampler needs read from their configs
(image, latent, channels, null class)."""

from dataclasses import dataclass, field

import torch

from diver_lite.errors import ModelError
from diver_lite.models import timestep_embedding as temb

# DiT's diffusion (docs/algorithm.md): 1000 steps, linear betas 1e-4 .. 0.02.
DIT_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 1e-4, "beta_end": 0.02, "beta_schedule": "linear"}
SD_VAE_SCALING = 0.18215


@dataclass
class DiverModels:
    transformer: "torch.nn.Module"   # diffusers DiTTransformer2DModel (learned sigma: out = 2 x in channels)
    vae: "torch.nn.Module"           # diffusers AutoencoderKL
    schedule: dict = field(default_factory=lambda: dict(DIT_SCHEDULE))
    source: str = ""
    tied_parameters: int = 0         # parameters saved by sharing the per-block embedders
    timestep_embedding: str = "diffusers"   # the convention the transformer computes (timestep_embedding.py)

    @property
    def latent_channels(self) -> int:
        return self.transformer.config.in_channels

    @property
    def latent_size(self) -> int:
        return self.transformer.config.sample_size

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return self.latent_size * self.vae_scale_factor

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def num_classes(self) -> int:
        return int(self.transformer.config.num_embeds_ada_norm)

    @property
    def null_class(self) -> int:
        """The CFG null label: the extra last row of the class table (1000 for DiT-XL/2)."""
        return self.num_classes

    @property
    def learned_sigma(self) -> bool:
        return self.transformer.config.out_channels == 2 * self.latent_channels

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def describe(self) -> dict:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731 (parameters() skips shared ones)
        return {"source": self.source, "image_size": self.image_size, "latent": [self.latent_channels,
                self.latent_size, self.latent_size], "num_classes": self.num_classes,
                "transformer_parameters": count(self.transformer), "vae_parameters": count(self.vae),
                "dtype": str(next(self.transformer.parameters()).dtype).replace("torch.", ""),
                "tied_parameters": self.tied_parameters, "timestep_embedding": self.timestep_embedding}

    def use_timestep_embedding(self, record: str | None, override: str | None = None) -> None:
        """Run the convention the weights were trained with (`record`; None: Meta's), or `override`."""
        self.timestep_embedding = temb.resolve(record, override)
        temb.apply(self.transformer, self.timestep_embedding)


def checked_models(models: DiverModels) -> DiverModels:
    t, v = models.transformer.config, models.vae.config
    if v.latent_channels != t.in_channels:
        raise ModelError(f"the VAE makes {v.latent_channels}-channel latents but the DiT takes {t.in_channels}",
                         "pair the DiT with the VAE it was trained with")
    if not models.learned_sigma:
        raise ModelError(f"the DiT outputs {t.out_channels} channels, not 2 x {t.in_channels} (learned sigma)",
                         "DIVER's guidance needs a learned-sigma DiT such as DiT-XL/2")
    return models
