"""The controls a reviewer asks for beside a recovery, run through the same pipeline as DIVER itself:

- "round-trip": the VAE alone (encode to a posterior sample, decode), no diffusion step: what the autoencoder's
  manifold does to the set;
- "raw-dit": class-conditional DiT samples from pure noise over the whole schedule (labels and CFG on every step, no
  inheritance, no guidance): the paper's "raw DiT" row, what the prior makes without the distilled images;
- "projection": no model at all, each image clipped to its pixel range; "projection-grey" also replaces each
  pixel's channels by their mean (for a grey dataset stored in three channels).

"none" is DIVER. Pure numpy for the projections; the others only choose what the recovery runs."""

from dataclasses import replace

import numpy as np

from diver_lite.core.prepare import from_unit, to_unit

CONTROLS = ("none", "round-trip", "raw-dit", "projection", "projection-grey")
NO_MODEL = ("projection", "projection-grey")       # need neither the DiT nor the VAE


def project(images: np.ndarray, pixel_space: str, grey: bool) -> np.ndarray:
    """images [N, C, H, W] in `pixel_space` -> clipped to [0, 1] in pixels (and, if `grey`, each pixel's channels
    replaced by their mean), back in `pixel_space`."""
    unit = np.clip(to_unit(images.astype(np.float32), pixel_space), 0.0, 1.0)
    if grey:
        unit = np.repeat(unit.mean(axis=1, keepdims=True), unit.shape[1], axis=1)
    return from_unit(unit, pixel_space)


def raw_dit_config(config):
    """The schedule a raw-DiT sample runs: all S steps from index S-1, labels with CFG on every step, no
    guidance (the same S, CFG scale, channels and sampler as the run)."""
    S = config.num_sampling_steps
    return replace(config, t_init=S - 1, steps=S, align=False, guidance_scale=0.0, guidance_window=(0, -1),
                   label_phase="all")
