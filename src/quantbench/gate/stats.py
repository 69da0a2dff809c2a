"""Evidence for timing changes, after asv's ``_stats.py``: a change counts only when it is
both large (the policy threshold, checked by the caller) and real (this module).

* Mann-Whitney U (two-sided, :func:`scipy.stats.mannwhitneyu`) on the raw per-round seconds:
  no normality assumption, robust to the long right tail of timings.
* When the sample sizes cannot possibly reach ``alpha`` (the smallest two-sided exact p-value
  is ``2 / C(m+n, m)``), or a side has fewer than ``min_rounds`` rounds, the evidence is
  *insufficient* instead of silently "not significant".
* The ratio current/baseline is estimated Hodges-Lehmann style on log seconds: the median of
  all pairwise log-ratios, with the distribution-free confidence interval read off the sorted
  pairwise ratios at the Mann-Whitney critical ranks. Deterministic (no resampling), and
  O(m*n), which is tiny for benchmark round counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Evidence:
    n_baseline: int
    n_current: int
    sufficient: bool
    reason: str = ""
    p_value: float | None = None
    ratio: float | None = None  # Hodges-Lehmann estimate of current / baseline seconds
    ci: tuple[float, float] | None = None  # for ``ratio``, at ``confidence``
    confidence: float | None = None
    # "rounds": one process per side, the rounds are the samples; "processes": each process's median
    # is one sample (gate/processes.py), with the t interval's log-scale standard error and its df.
    level: str = "rounds"
    se_log: float | None = None
    df: float | None = None
    method: str = ""

    def significant(self, *, alpha: float) -> bool:
        return self.sufficient and self.p_value is not None and self.p_value < alpha


def _clean(samples: Sequence[float]) -> np.ndarray:
    values = np.asarray(list(samples), dtype=float)
    # Log-ratios need positive, finite times; anything else is a broken round.
    return values[np.isfinite(values) & (values > 0)]


def smallest_p_value(m: int, n: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney U test can give for sizes m, n."""
    return min(1.0, 2.0 / math.comb(m + n, min(m, n))) if m and n else 1.0


def ratio_interval(baseline: np.ndarray, current: np.ndarray, *, confidence: float
                   ) -> tuple[float, tuple[float, float]]:
    """Hodges-Lehmann ratio estimate and its confidence interval (current / baseline)."""
    diffs = np.sort(np.subtract.outer(np.log(current), np.log(baseline)).ravel())
    m, n = len(baseline), len(current)
    total = m * n
    z = stats.norm.ppf(0.5 + confidence / 2)
    # Number of pairwise differences cut from each end (normal approximation of U's quantile).
    k = int(math.floor(total / 2 - z * math.sqrt(m * n * (m + n + 1) / 12)))
    if k < 1:
        low, high = -math.inf, math.inf
    else:
        low, high = float(diffs[k - 1]), float(diffs[total - k])
    return math.exp(float(np.median(diffs))), (math.exp(low), math.exp(high))


def compare_samples(baseline: Sequence[float], current: Sequence[float], *, alpha: float,
                    min_rounds: int) -> Evidence:
    """Is ``current`` (seconds per round) really different from ``baseline``?"""
    base, cur = _clean(baseline), _clean(current)
    m, n = len(base), len(cur)
    if min(m, n) < min_rounds:
        return Evidence(m, n, False, f"{min(m, n)} rounds, policy min_rounds is {min_rounds}")
    p_min = smallest_p_value(m, n)
    if p_min >= alpha:
        return Evidence(m, n, False, f"{m} vs {n} rounds cannot reach alpha {alpha:g} "
                                     f"(smallest possible p {p_min:.2g})")
    p_value = float(stats.mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    if not math.isfinite(p_value):  # all rounds identical on both sides
        p_value = 1.0
    confidence = 1 - alpha
    ratio, ci = ratio_interval(base, cur, confidence=confidence)
    return Evidence(m, n, True, p_value=p_value, ratio=ratio, ci=ci, confidence=confidence)
