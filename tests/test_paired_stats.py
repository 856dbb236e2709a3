"""The statistics behind every 'helps / hurts / neutral' and the pre-registered analysis: Student-t p-values and
quantiles against tabled values, Holm's step-down adjustment, the smallest detectable effect."""

import numpy as np
import pytest

from diver_lite.experiments.fashion_mnist.paired import (holm, paired_difference, paired_test, smallest_detectable,
                                                         t_quantile, t_two_sided_p)


@pytest.mark.parametrize("t,df,p", [(2.145, 14, 0.05), (2.776, 4, 0.05), (12.706, 1, 0.05), (2.977, 14, 0.01),
                                    (1.761, 14, 0.10), (0.0, 9, 1.0)])
def test_t_p_values_match_the_tables(t, df, p):
    assert t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)


def test_t_quantiles_match_the_tables():
    assert t_quantile(0.975, 14) == pytest.approx(2.1448, abs=1e-3)
    assert t_quantile(0.8, 14) == pytest.approx(0.8681, abs=1e-3)
    assert t_quantile(0.99375, 14) == pytest.approx(2.8640, abs=2e-3)


def test_holm_steps_down_and_stays_monotone():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "c": 0.09, "b": 0.09, "d": 0.5})
    assert holm({"x": 0.3, "y": 0.6}) == pytest.approx({"x": 0.6, "y": 0.6})


def test_paired_test_and_difference_agree_and_detectable_effect_shrinks_with_n():
    rng = np.random.default_rng(0)
    a, b = rng.normal(50, 2, 15), rng.normal(49, 2, 15)
    t, d = paired_test(list(a - b)), paired_difference(list(a), list(b))
    assert t["mean"] == pytest.approx(d["mean"]) and t["lo"] == pytest.approx(d["lo"]) and t["p"] == pytest.approx(
        d["p"])
    assert t["sd"] == pytest.approx(float(np.std(a - b, ddof=1)))
    assert smallest_detectable(1.7, 15) == pytest.approx((2.1448 + 0.8681) * 1.7 / 15 ** 0.5, rel=1e-3)
    assert smallest_detectable(1.7, 60) < smallest_detectable(1.7, 15)
