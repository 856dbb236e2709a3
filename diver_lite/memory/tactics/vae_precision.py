"""--vae-precision: the VAE's weights when they should differ from the DiT's compute dtype."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic
from diver_lite.memory.tactics.precision import COMPUTE_DTYPES

VAE_PRECISIONS = tuple(COMPUTE_DTYPES)     # the VAE runs in one of the compute dtypes


def _check(plan) -> None:
    if plan.vae_precision not in (None, *VAE_PRECISIONS):
        raise ConfigError(f"unknown VAE precision {plan.vae_precision!r}", f"use {', '.join(VAE_PRECISIONS)}")


def _parse(part: str) -> dict | None:
    if part.startswith("vae-") and part not in ("vae-slicing", "vae-tiling"):
        return {"vae_precision": part[4:]}
    return None


ENTRY = Tactic(
    name="vae_precision", default=None, order=3, label_order=2, option="--vae-precision", choices=VAE_PRECISIONS,
    help="VAE weights, when they should differ from the DiT's.",
    label=lambda v: None if v is None else f"vae-{v}", parse=_parse, check=_check)
