"""Uncertainty of quality figures: every figure is an estimate from a finite sample of texts.

Three estimators, each where it is the usual one:

* **Wilson score interval** for a share of independent trials (accuracy, agreement with fp32,
  flip rate): it stays inside [0, 1] and is honest at 48 texts, where the normal one is not.
* **Standard error of a mean over tokens** (perplexity, KL, Δp, same-top-token share), as
  llama.cpp's perplexity tool prints ``±`` for each. Tokens of one text are correlated, so
  these intervals are lower bounds (llama.cpp's are too); docs/generation.md says so.
* **Seeded bootstrap over texts** for figures that are not a mean (macro F1, balanced accuracy,
  fairness gaps, paired differences against fp32): resample texts with replacement, recompute,
  take the 2.5th and 97.5th percentiles. The seed is fixed, so a run's intervals repeat.

Every interval is 95 % and written ``<figure>_ci95: [low, high]`` beside the figure.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

Z95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0


def _round(pair: tuple[float, float], digits: int) -> list[float]:
    return [round(float(pair[0]), digits), round(float(pair[1]), digits)]


def wilson(successes: int, trials: int, digits: int = 6) -> list[float] | None:
    """95 % Wilson score interval of ``successes / trials``; None for no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denom = 1 + Z95**2 / trials
    centre = (p + Z95**2 / (2 * trials)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / trials + Z95**2 / (4 * trials**2)) / denom
    return _round((max(0.0, centre - half), min(1.0, centre + half)), digits)


def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error (sample standard deviation / sqrt(n)); SE 0 for one value."""
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        return float("nan"), float("nan")
    se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return float(values.mean()), se


def normal_ci(mean: float, se: float, digits: int = 6) -> list[float]:
    return _round((mean - Z95 * se, mean + Z95 * se), digits)


def bootstrap_ci(statistic: Callable[[np.ndarray], float], n: int, *, digits: int = 6,
                 samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> list[float] | None:
    """95 % percentile interval of ``statistic(index)`` over ``samples`` resamples of ``n`` items.

    ``statistic`` gets an index array (with repeats) and returns the figure on those items, so
    paired figures resample both sides together. Resamples where it is undefined (NaN) are dropped.
    """
    if n <= 1:
        return None
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(samples)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < samples // 2:
        return None
    return _round((np.percentile(values, 2.5), np.percentile(values, 97.5)), digits)


def se_from_ci(ci: list[float] | None) -> float | None:
    """The standard error a symmetric 95 % interval implies (for combining two sides)."""
    return None if not ci else (ci[1] - ci[0]) / (2 * Z95)
