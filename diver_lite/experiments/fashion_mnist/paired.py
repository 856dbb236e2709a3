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
    half = t975(n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    lo, hi = mean - half, mean + half
    verdict = "helps" if lo > 0 else "hurts" if hi < 0 else "neutral"
    return {"mean": mean, "lo": lo, "hi": hi, "n": n, "verdict": verdict}
