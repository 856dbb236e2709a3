"""DDIM with eta = 0 (deterministic): x_{i-1} = sqrt(abar_{i-1}) x0_pred + sqrt(1 - abar_{i-1}) eps."""

from diver_lite.core.guidance import ddim_update
from diver_lite.core.sampler_type import Sampler


def ddim(x, x0_pred, eps, sigma, noise, p):
    return ddim_update(x0_pred, eps, p)


ENTRY = Sampler("ddim", ddim, stochastic=False, order=0)
