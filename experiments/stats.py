"""Confidence intervals for the small samples of seeds these experiments produce."""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _stats


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion: sound at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return (math.nan, math.nan)
    z = _stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # At 0/n and n/n one bound is exactly 0 or 1; say so rather than 0.9999999.
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))
    high = 1.0 if successes == n else min(1.0, float(centre + half))
    return (low, high)


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds: ``(mean, low, high)``; nan-valued entries dropped."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return (math.nan, math.nan, math.nan)
    mean = sum(clean) / len(clean)
    if len(clean) < 2:
        return (mean, math.nan, math.nan)
    sem = _stats.sem(clean)
    if sem == 0:
        return (mean, mean, mean)
    low, high = _stats.t.interval(confidence, len(clean) - 1, loc=mean, scale=sem)
    return (mean, float(low), float(high))
