"""The protocol of a memory tactic: one field of the runtime plan, with everything derived from it (CLI option,
label part and its parser, checks, the peak-estimate term, what it does to the loaded models)."""

from collections.abc import Callable
from dataclasses import dataclass


def _nothing(*args) -> None:
    return None


@dataclass
class Estimate:
    """The terms of a peak estimate, in bytes, that tactics adjust in turn (memory/estimate.py sums them)."""
    dit_bytes: int                 # bytes per DiT activation/weight element in the compute dtype
    vae_bytes: int                 # the same for the VAE
    block: int                     # one DiT block's weights
    resident: int                  # the DiT outside its blocks
    encoder: int
    decoder: int
    dit_weights: int | None = None   # None: everything resident (set by an offload)
    vae_weights: int | None = None
    dit_activations: int = 0
    vae_images: int = 1            # images the VAE holds at once
    vae_pixels: int = 0            # pixels per image (or tile) the VAE holds at once
    separate_on_device: bool = False   # the DiT and the VAE are never on the device together (CUDA)


@dataclass(frozen=True)
class Tactic:
    name: str                      # the RuntimePlan field
    default: object
    order: int                     # position in RuntimePlan (its positional arguments)
    label_order: int               # position of its part in the plan's label
    option: str                    # the CLI flag
    help: str
    choices: tuple | None = None   # CLI choices (None: free text; bool default: a flag)
    metavar: str | None = None
    cli_default: object = None     # what the CLI passes when the flag is absent (None: `default`)
    chosen_by_budget: bool = False  # a memory budget picks it: giving both is refused
    label: Callable[[object], str | None] = _nothing     # its part of the plan's label (None: not shown)
    parse: Callable[[str], dict | None] = _nothing       # a label part -> {field: value} (None: not its part)
    check: Callable[[object], None] = _nothing            # check(plan): ConfigError when invalid
    check_device: Callable[[object, str], None] = _nothing   # check_device(plan, device_type)
    exact: bool = False            # leaves the numbers as they are: a resumed run may change it
    numerics: Callable[[object], object] | None = None   # else: the part of its value that changes results
    estimate: Callable[..., None] = _nothing   # estimate(e: Estimate, plan, sizes, device_type, batch)
    apply: Callable[[object, object], None] = _nothing   # apply(models, plan) after placement
