"""Attention slicing per diffusers `Attention` module of the DiT and the VAE (`--attention-slice`)."""

# Attention slicing, per attention module. `DiTPipeline.enable_attention_slicing()` does nothing for DiT (neither
# model has `set_attention_slice`), so this walks every diffusers `Attention` of the DiT and the VAE.
#
# Slicing computes attention `size` heads (x batch) at a time with diffusers' SlicedAttnProcessor, which forms the
# score matrix of each slice explicitly. torch 2's scaled_dot_product_attention (diffusers' default processor) never
# forms it on CPU or CUDA, so against the default slicing saves nothing and costs time (benchmarks/
# attention_slicing.py measures it); `auto` therefore slices only modules that do form the whole score matrix.

import torch


def attention_modules(*models: torch.nn.Module) -> list:
    from diffusers.models.attention_processor import Attention

    return [m for model in models for m in model.modules() if isinstance(m, Attention)]


def forms_full_scores(module) -> bool:
    """True for processors that materialise [batch x heads, N, N] (diffusers' classic AttnProcessor)."""
    from diffusers.models.attention_processor import AttnProcessor

    return isinstance(module.processor, AttnProcessor)


def set_attention_slice(setting: str | int, *models: torch.nn.Module) -> int:
    """setting: "off" (the default processor), "auto" (slice only modules that form the full score matrix, one
    head at a time), or N (N head-batches per slice, every module). Returns the number of modules sliced."""
    if setting == "off":
        return 0
    sliced = 0
    for module in attention_modules(*models):
        if setting == "auto":
            if not forms_full_scores(module):
                continue
            size = 1
        else:
            size = min(int(setting), module.sliceable_head_dim)
        module.set_attention_slice(size)
        sliced += 1
    return sliced
