"""The timestep embedding convention of a DiT's weights. Meta's DiT (`TimestepEmbedder`) uses the frequencies
exp(-ln(1e4)·k/128); diffusers' `DiTTransformer2DModel` builds `Timesteps(..., downscale_freq_shift=1)`, i.e. /127.
Weights trained with one convention must run with it: Meta's checkpoints (original .pt and the converted
facebook/DiT-XL-2-* folders) with "dit", models trained with diffusers' class (the embedded prior) with
"diffusers". A model folder records its convention in transformer/config.json; one that records none is Meta's."""

import json
from pathlib import Path

CONVENTIONS = ("dit", "diffusers")
CONFIG_KEY = "timestep_embedding"            # in transformer/config.json (diffusers ignores unknown keys)
UNRECORDED = "dit"                           # every public DiT-XL/2 checkpoint is Meta's
FREQ_SHIFT = {"dit": 0, "diffusers": 1}      # Timesteps.downscale_freq_shift


def recorded(config_file: Path) -> str | None:
    """The convention a transformer/config.json records, or None."""
    try:
        value = json.loads(Path(config_file).read_text()).get(CONFIG_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return value if value in CONVENTIONS else None


def resolve(record: str | None, override: str | None) -> str:
    """`override` (the user's --timestep-embedding) wins, then the model's record, then Meta's convention."""
    for value in (override, record):
        if value is not None:
            if value not in CONVENTIONS:
                raise ValueError(f"unknown timestep embedding {value!r}; use one of {', '.join(CONVENTIONS)}")
            return value
    return UNRECORDED


def apply(transformer, convention: str) -> None:
    """Make every timestep projection of a diffusers DiT compute `convention`'s frequencies. Only the module's
    setting changes (it is how diffusers parameterises the same embedding), never its forward or its weights."""
    from diffusers.models.embeddings import Timesteps

    for module in transformer.modules():
        if isinstance(module, Timesteps):
            module.downscale_freq_shift = FREQ_SHIFT[convention]


def record(config_file: Path, convention: str) -> None:
    """Write the convention into a saved transformer/config.json."""
    cfg = json.loads(Path(config_file).read_text())
    cfg[CONFIG_KEY] = convention
    Path(config_file).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
