"""Intervals for the small samples of seeds these experiments produce.

* Seed counts (how many seeds' policies disable the switch in most episodes): Wilson score
  intervals, sound at 0/n and n/n.
* Means over seeds: percentile bootstrap intervals (``scipy.stats.bootstrap``), as rliable
  reports them (Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice").
* The interquartile mean (IQM, the mean of the middle half of the seeds, ``scipy.stats.
  trim_mean(x, 0.25)``) with the same bootstrap; with one task per condition, rliable's
  stratified bootstrap is this bootstrap over seeds.
* An intervention's difference from the baseline (difference of means over two independent
  sets of seeds), bootstrapped the same way.

Every resampling is seeded (:data:`BOOTSTRAP_SEED`): the same results give the same intervals.
Samples with no spread give the point itself as both ends.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as _stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

Interval = tuple[float, float, float]
"""``(estimate, low, high)``; ``low`` and ``high`` are NaN when the sample is too small."""


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
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


def _clean(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def _bootstrap(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., float], confidence: float
) -> Interval:
    estimate = float(statistic(*samples, axis=-1))
    if any(len(s) < 2 for s in samples):
        return (estimate, math.nan, math.nan)
    if all(np.ptp(s) == 0 for s in samples):
        return (estimate, estimate, estimate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's note on degenerate resamples
        result = _stats.bootstrap(
            samples,
            statistic,
            confidence_level=confidence,
            n_resamples=RESAMPLES,
            method="percentile",
            vectorized=True,  # the statistic takes axis: one call, not one per resample
            random_state=np.random.default_rng(BOOTSTRAP_SEED),
        )
    low, high = result.confidence_interval
    return (estimate, float(low), float(high))


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean over seeds with its percentile bootstrap interval; NaN entries dropped."""
    clean = _clean(values)
    if clean.size == 0:
        return (math.nan, math.nan, math.nan)
    return _bootstrap((clean,), np.mean, confidence)


def iqm_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Interquartile mean over seeds with its percentile bootstrap interval."""
    clean = _clean(values)
    if clean.size == 0:
        return (math.nan, math.nan, math.nan)
    return _bootstrap((clean,), lambda x, axis: _stats.trim_mean(x, 0.25, axis=axis), confidence)


def difference_interval(
    values: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """``mean(values) - mean(baseline)`` over independent seeds, with its bootstrap interval."""
    a, b = _clean(values), _clean(baseline)
    if a.size == 0 or b.size == 0:
        return (math.nan, math.nan, math.nan)
    return _bootstrap(
        (a, b), lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis), confidence
    )
