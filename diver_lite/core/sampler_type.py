"""The protocol of a sampler (core/samplers/): its name and its update from the step's prediction."""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Sampler:
    name: str
    # update(x, x0_pred, eps, sigma, noise, p) -> x_{i-1} before the semantic guidance; `noise` is the step's fresh
    # noise when `stochastic` (None at i = 0), `sigma` DiT's learned sigma_i.
    update: Callable
    stochastic: bool = False
    order: int = 100
