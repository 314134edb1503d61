"""Intervals for the small samples of seeds these experiments produce.

* Seed counts (how many seeds' policies disable the switch in most episodes): Wilson score
  intervals, sound at 0/n and n/n.
* Means over seeds: percentile bootstrap intervals, as rliable reports them (Agarwal et al.
  2021, "Deep RL at the Edge of the Statistical Precipice").
* The interquartile mean (IQM, the mean of the middle half of the seeds) with the same
  bootstrap; with one task per condition, rliable's stratified bootstrap is this bootstrap
  over seeds.
* An intervention's difference from the baseline (difference of means over two independent
  sets of seeds), bootstrapped the same way.

The bootstrap is ``scipy.stats.bootstrap(..., method="percentile")`` and the IQM
``scipy.stats.trim_mean(x, 0.25)``, written out in numpy (the same draws and operations,
``tests/test_metrics.py`` checks them equal to scipy's, bit for bit): importing
``scipy.stats`` took a second of every report's three.

Every resampling is seeded (:data:`BOOTSTRAP_SEED`): the same results give the same intervals.
Samples with no spread give the point itself as both ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0

Interval = tuple[float, float, float]
"""``(estimate, low, high)``; ``low`` and ``high`` are NaN when the sample is too small."""


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion: sound at 0/n and n/n, unlike the normal one."""
    if n == 0:
        return (math.nan, math.nan)
    from scipy.special import ndtri  # scipy.stats.norm.ppf, without importing scipy.stats

    z = float(ndtri(0.5 + confidence / 2))
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


def trim_mean(x: np.ndarray, proportion: float, axis: int = -1) -> np.ndarray:
    """The mean of ``x`` along ``axis`` without its lowest and highest ``proportion`` (each
    end rounded down), as ``scipy.stats.trim_mean`` computes it."""
    n = x.shape[axis]
    low = int(proportion * n)
    high = n - low
    kept = np.take(np.partition(x, (low, high - 1), axis), np.arange(low, high), axis)
    return np.mean(kept, axis=axis)


def _linear_quantiles(draws: np.ndarray, probabilities: Sequence[float]) -> list[float]:
    """Quantiles of a 1-d sample with linear interpolation (Hyndman and Fan's type 7, numpy's
    and scipy's default), in the arithmetic of ``scipy.stats.quantile``."""
    ordered = np.sort(draws)
    n = len(ordered)
    out = []
    for p in np.asarray(probabilities, dtype=np.float64):
        position = p * n + (1 - p)
        above = position // 1
        below = above - 1
        fraction = 0.0 if below < 0 else position % 1
        below, above = min(max(below, 0.0), n - 1), min(max(above, 0.0), n - 1)
        out.append(float((1 - fraction) * ordered[int(below)] + fraction * ordered[int(above)]))
    return out


def _bootstrap(
    samples: tuple[np.ndarray, ...], statistic: Callable[..., float], confidence: float
) -> Interval:
    """The percentile bootstrap of ``statistic`` (vectorised: it takes ``axis``) over
    independent ``samples``: :data:`RESAMPLES` resamples of each, drawn in turn from one
    generator seeded :data:`BOOTSTRAP_SEED`."""
    estimate = float(statistic(*samples, axis=-1))
    if any(len(s) < 2 for s in samples):
        return (estimate, math.nan, math.nan)
    if all(np.ptp(s) == 0 for s in samples):
        return (estimate, estimate, estimate)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resamples = [s[rng.integers(0, len(s), (RESAMPLES, len(s)))] for s in samples]
    draws = statistic(*resamples, axis=-1)
    alpha = (1 - confidence) / 2
    low, high = _linear_quantiles(draws, (alpha, 1 - alpha))
    return (estimate, low, high)


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
    return _bootstrap((clean,), lambda x, axis: trim_mean(x, 0.25, axis), confidence)


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
