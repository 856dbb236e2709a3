"""DDPM ancestral sampling with DiT's learned variance (PReDD's sampler): the posterior mean plus sigma_i noise."""

from diver_lite.core.guidance import ddpm_update
from diver_lite.core.sampler_type import Sampler


def ddpm(x, x0_pred, eps, sigma, noise, p):
    return ddpm_update(x, x0_pred, sigma, noise, p)


ENTRY = Sampler("ddpm", ddpm, stochastic=True, order=1)
