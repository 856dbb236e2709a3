"""Paired differences of two sets scored by the same students on the same seeds: mean difference with a 95 %
Student-t interval, so "helps / neutral / hurts" is a statistical statement. Pure numpy."""

import math

import numpy as np

# Two-sided 95 % quantiles of Student's t, t_{0.975, df}, for df = 1..30 (beyond: the normal's 1.96 is within 4 %).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 1.96


def paired_difference(runs: list[float], baseline_runs: list[float]) -> dict:
    """runs[k] and baseline_runs[k] come from the same seed k. Returns mean difference, its 95 % interval [lo, hi]
    (None with a single pair), n, and a verdict: 'helps' (lo > 0), 'hurts' (hi < 0), else 'neutral'."""
    if len(runs) != len(baseline_runs) or not runs:
        raise ValueError(f"paired runs need equal, non-zero counts ({len(runs)} vs {len(baseline_runs)})")
    d = np.asarray(runs, dtype=np.float64) - np.asarray(baseline_runs, dtype=np.float64)
    mean, n = float(d.mean()), len(d)
    if n < 2:
        return {"mean": mean, "lo": None, "hi": None, "n": n, "verdict": "neutral"}
    sd = float(d.std(ddof=1))
    half = t975(n - 1) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    verdict = "helps" if lo > 0 else "hurts" if hi < 0 else "neutral"
    p = t_two_sided_p(mean / (sd / math.sqrt(n)), n - 1) if sd > 0 else (0.0 if mean != 0 else 1.0)
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "verdict": verdict, "p": p, "sd": sd}


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    return _betainc(df / 2, 0.5, df / (df + t * t))


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm's step-down adjusted p-values (family-wise error), same keys."""
    order = sorted(pvalues, key=pvalues.get)
    adjusted, running = {}, 0.0
    for k, name in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * pvalues[name]))
        adjusted[name] = running
    return adjusted


def paired_test(d: list[float]) -> dict:
    """Mean of per-unit differences d, its 95 % Student-t interval, the sample SD (n - 1), and the two-sided
    p-value of a paired t-test against zero."""
    d = np.asarray(d, dtype=np.float64)
    n, mean = len(d), float(d.mean())
    if n < 2:
        return {"mean": mean, "lo": None, "hi": None, "sd": None, "n": n, "p": None}
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = t975(n - 1) * se
    p = t_two_sided_p(mean / se, n - 1) if se > 0 else (0.0 if mean != 0 else 1.0)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "sd": sd, "n": n, "p": p}


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t (q > 0.5), by bisection on t_two_sided_p."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1 - t_two_sided_p(mid, df) / 2 < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def smallest_detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The true mean difference a two-sided paired t-test at `alpha` detects with probability `power` (the usual
    approximation (t_{1-alpha/2} + t_{power}) sd / sqrt(n))."""
    return (t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)
