"""--attention-slice: attention computed N head-batches at a time (memory/attention_slicing.py)."""

from diver_lite.errors import ConfigError
from diver_lite.memory.tactic import Tactic


def _count(value) -> int | None:
    """N for a number of head-batches (ASCII digits only: str.isdigit also takes '²', which int() refuses)."""
    v = str(value)
    return int(v) if v.isascii() and v.isdigit() else None


def _check(plan) -> None:
    v = plan.attention_slice
    if v not in ("off", "auto") and not (_count(v) is not None and _count(v) > 0):
        raise ConfigError(f"--attention-slice {v!r}", "use auto, off or a positive number")


def _estimate(e, plan, s, device_type: str, batch: int) -> None:
    n = _count(plan.attention_slice)
    if n is not None:   # a slice's score matrix (auto leaves SDPA modules alone)
        e.dit_activations += n * s.tokens ** 2 * e.dit_bytes


def _apply(models, plan) -> None:
    from diver_lite.memory.attention_slicing import set_attention_slice

    set_attention_slice(plan.attention_slice, models.transformer, models.vae)


ENTRY = Tactic(
    name="attention_slice", default="off", order=2, label_order=3, option="--attention-slice",
    metavar="auto|off|N", cli_default="off",
    help="Slice attention per module, N head-batches at a time. auto slices only modules that form the whole score "
         "matrix (torch 2's attention never does).",
    exact=True, label=lambda v: None if v == "off" else f"slice-{v}",
    parse=lambda part: {"attention_slice": part[len("slice-"):]} if part.startswith("slice-") else None,
    check=_check, estimate=_estimate, apply=_apply)
