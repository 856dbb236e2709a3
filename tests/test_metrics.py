"""The one PSNR: known values, not the code's own recipe recomputed."""

import numpy as np

from diver_lite.core.metrics import psnr, psnr_from_mse


def test_psnr_of_known_differences():
    a = np.zeros((2, 3, 4, 4))
    assert np.isclose(psnr(a, a + 0.1), 20.0)                    # MSE 0.01 with peak 1: 20 dB
    assert np.isclose(psnr(a, a + 0.01), 40.0)
    assert psnr(a, a) == 200.0                                    # identical images: the 1e-20 floor, not inf
    b = a.copy()
    b[1] += 0.1
    assert np.allclose(psnr(a, b, per_image=True), [200.0, 20.0])
    assert np.isclose(psnr_from_mse(0.25), 10 * np.log10(4))
