"""The 16-bit overflow fallback shared by the DiT and the VAE: a call whose outputs are not finite is re-run once
with the module converted to the fallback dtype (with a warning), or refused with the fix when there is none."""

import warnings
from collections.abc import Callable

import torch

from diver_lite.errors import ModelError


def run_finite(call: Callable[[], tuple], what: str, module: torch.nn.Module, fallback: torch.dtype | None,
               hint: str, on_fallback: Callable[[torch.dtype], None] = lambda dtype: None) -> tuple:
    """call() -> a tuple of tensors from `module` (`what` names it in messages: "the DiT at timestep 500")."""
    out = call()
    if all(torch.isfinite(o).all() for o in out):
        return out
    dtype = next(module.parameters()).dtype
    if fallback is None or dtype == fallback:
        raise ModelError(f"{what} produced non-finite values in {dtype}", hint)
    warnings.warn(f"{what} overflowed in {dtype}; re-running in {fallback}", RuntimeWarning, stacklevel=3)
    module.to(fallback)
    on_fallback(fallback)
    return run_finite(call, what, module, None, hint)
