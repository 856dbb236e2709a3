"""PSNR, the one implementation every report, profile, card and benchmark uses: images in [0, 1] (peak 1), the
mean squared error floored at 1e-20 so that identical images give 200 dB rather than infinity."""

import numpy as np


def psnr_from_mse(mse):
    """PSNR in dB from a mean squared error (a number or an array of them, one per image)."""
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-20))


def psnr(a: np.ndarray, b: np.ndarray, per_image: bool = False):
    """PSNR of images a against b in [0, 1]: one number, or [N] for a batch with `per_image`."""
    diff = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    return psnr_from_mse(diff.reshape(len(diff), -1).mean(axis=1) if per_image else diff.mean())
