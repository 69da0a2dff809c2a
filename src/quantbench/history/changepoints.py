"""Change points in one metric's history: E-divisive means with a permutation test per split.

The method of MongoDB's signal-processing-algorithms and Apache Otava (Daly et al., "Change Point
Detection in Software Performance Testing", arXiv 2003.00584), after Matteson and James ("A
Nonparametric Approach for Multiple Change Point Analysis of Multivariate Data", 2014):

* **The statistic.** For a split of ``Z[s:e]`` into ``X = Z[s:tau]`` and ``Y = Z[tau:kappa]``, the
  energy distance ``E = 2/(nm) sum|X_i - Y_j|^a - mean_pairs|X_i - X_k|^a - mean_pairs|Y_j - Y_l|^a``
  scaled to ``q = nm/(n+m) E``. The candidate is the ``tau`` of the largest ``q`` over all
  ``(tau, kappa)`` (``kappa`` lets a change be seen before the next one), both parts at least
  ``min_size`` values long.
* **Recursive bisection.** The best candidate over the current segments splits its segment; the
  search goes on in the new segments while splits are significant.
* **The permutation test.** Each segment's values are shuffled within the segment and the largest
  ``q`` over all segments recomputed; the p-value is ``(exceed + 1) / (permutations + 1)`` with
  ``exceed`` the shuffles that reach the observed ``q``. The first split that fails stops the search.

``ruptures`` has the cost functions but no significance test per split, and Otava's own package
pins numpy and pulls cloud clients, so the statistic is implemented here (about 60 lines of numpy).
The shuffles come from a seeded generator: one history always gives one answer (Hunter's paper
dropped permutations for a t-test because unseeded ones did not).

Values are in commit order (first-parent), one per commit; the direction of a metric, and so whether
a step is a regression, comes from :data:`quantbench.results.METRICS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from quantbench.errors import QuantbenchError, UnknownNameError
from quantbench.results import METRICS, metric_spec

#: Significance level of each split's permutation test. The test is exact, so with no change in a
#: history it flags one with probability ALPHA: 0.02 keeps more than 5 false alarms in 100 no-change
#: histories (the issue's bound) to a 1.5 % chance; 0.05 would give 38 % (docs/history.md).
ALPHA = 0.02
#: Shortest segment. A change must hold for this many commits before it is one, so one or two slow
#: runs cannot form a segment; it also sets how many commits at a new level a step needs before it
#: can be seen. 5 placed the most steps at their commit on the study's tuning seeds (3 and 4 were
#: close behind; scripts/changepoint_study.py --tune).
MIN_SIZE = 5
#: Shuffles per test: p-values step by 1/200, so at ALPHA = 0.02 a significant split has at most
#: three shuffles of 199 reaching its q (Matteson and James' ecp uses 199 too).
PERMUTATIONS = 199
#: The exponent on distances: 1 (Otava's and Matteson and James' default) keeps the statistic
#: defined for heavy tails (any exponent in (0, 2) works, smaller is more robust).
POWER = 1.0
#: Confidence level of the interval reported for each step.
CONFIDENCE = 0.95

REGRESSION, IMPROVEMENT, UNCHANGED = "regression", "improvement", "unchanged"

_NON_FINITE = "history values must be finite: position {index} is {value!r}"
_SE_LENGTH = "std_errors must have one entry per value: {got} for {expected} values"
_SE_INVALID = "std_errors must be finite and >= 0: position {index} is {value!r}"
_BAD_PARAM = "{name} must be {rule}, got {value!r}"


class HistoryValueError(QuantbenchError, ValueError):
    """A history that cannot be analysed (a NaN, a wrong length): one line naming the position."""


@dataclass(frozen=True)
class ChangePoint:
    """One significant step. ``index`` is the first position of the new level: the commit where the
    change began. Means and step are over the neighbouring segments of the final segmentation."""

    index: int
    mean_before: float
    mean_after: float
    #: mean_after - mean_before, in the metric's unit.
    step: float
    #: step / |mean_before| (NaN when mean_before is 0).
    rel_step: float
    #: 95 % interval of rel_step (Welch on the two segments; see :func:`_step_interval`).
    rel_step_interval: tuple[float, float]
    p_value: float
    q_hat: float
    n_before: int
    n_after: int


def as_series(values: Sequence[float]) -> np.ndarray:
    """The values as a float array, refused with one line when one is not a finite number."""
    array = np.asarray(values, dtype=float).ravel()
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise HistoryValueError(_NON_FINITE.format(index=int(bad[0]), value=float(array[bad[0]])))
    return array


def per_commit(values: Sequence[float], commits: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(commits, mean, standard error) per commit, in the order the commits first appear, from one
    value per run. On this VM kind the noise lies between runs: with three runs a commit, 94 % of
    planted 5 % steps were placed at their commit ±1, with one 68 % (docs/history.md). A commit with
    one run has no own error (0: it floors nothing)."""
    series = as_series(values)
    if len(commits) != len(series):
        raise HistoryValueError(f"commits must have one entry per value: {len(commits)} for {len(series)} values")
    order: dict[str, list[float]] = {}
    for commit, value in zip(commits, series):
        order.setdefault(commit, []).append(float(value))
    means = np.array([np.mean(v) for v in order.values()])
    errors = np.array([np.std(v, ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0 for v in order.values()])
    return list(order), means, errors


def _check(name: str, ok: bool, rule: str, value) -> None:
    if not ok:
        raise HistoryValueError(_BAD_PARAM.format(name=name, rule=rule, value=value))


def _best_split(d: np.ndarray, min_size: int) -> tuple[int, float] | None:
    """(tau, q) maximizing q over (tau, kappa) for one segment's distance matrix ``d``; None when
    the segment is shorter than two minimum segments."""
    n = len(d)
    if n < 2 * min_size:
        return None
    # p[a, b] = sum of d[:a, :b]: every within/cross sum of a split is four lookups.
    p = np.zeros((n + 1, n + 1))
    p[1:, 1:] = d.cumsum(axis=0).cumsum(axis=1)
    diag = np.diagonal(p)
    tau = np.arange(min_size, n - min_size + 1)[:, None]
    kappa = np.arange(2 * min_size, n + 1)[None, :]
    ny = kappa - tau
    valid = ny >= min_size
    ny = np.maximum(ny, 2)  # masked below; avoids 0/0 on the invalid corner
    nx = tau
    cross = p[tau, kappa] - diag[tau]
    within_x = diag[tau] / 2
    within_y = (diag[kappa] - 2 * p[tau, kappa] + diag[tau]) / 2
    energy = 2 * cross / (nx * ny) - within_x / (nx * (nx - 1) / 2) - within_y / (ny * (ny - 1) / 2)
    q = np.where(valid, nx * ny / (nx + ny) * energy, -np.inf)
    i, j = np.unravel_index(np.argmax(q), q.shape)
    return int(tau[i, 0]), float(q[i, j])


def _segments(bounds: list[int]) -> list[tuple[int, int]]:
    return list(zip(bounds[:-1], bounds[1:]))


def _max_q(d: np.ndarray, segments: list[tuple[int, int]], min_size: int, order: np.ndarray) -> float:
    """The largest q over all segments, with positions taken in ``order`` (a shuffle per segment)."""
    best = -np.inf
    for s, e in segments:
        idx = order[s:e]
        found = _best_split(d[np.ix_(idx, idx)], min_size)
        if found is not None:
            best = max(best, found[1])
    return best


def _p_value(d, segments, q_obs, *, min_size, permutations, alpha, rng) -> float:
    """Share of within-segment shuffles whose largest q reaches ``q_obs`` (plus one, over plus one).
    Stops early once the split cannot be significant: the exact p-value then no longer matters."""
    # Distances are sums of many terms: a shuffle that ties the observed q must count as reaching it.
    tolerance = 1e-9 * max(abs(q_obs), float(d.max(initial=0.0)), 1e-300)
    exceed, give_up = 0, alpha * (permutations + 1) - 1
    order = np.arange(len(d))
    for done in range(1, permutations + 1):
        for s, e in segments:
            order[s:e] = rng.permutation(np.arange(s, e))
        if _max_q(d, segments, min_size, order) >= q_obs - tolerance:
            exceed += 1
            if exceed > give_up:
                return (exceed + 1) / (done + 1)
    return (exceed + 1) / (permutations + 1)


def _side_se(values: np.ndarray, errors: np.ndarray | None) -> float:
    """Standard error of a segment's mean: its scatter, floored by the points' own standard errors
    (a few points that happen to agree do not claim more precision than each was measured with)."""
    n = len(values)
    scatter = values.std(ddof=1) / math.sqrt(n) if n > 1 else 0.0
    own = math.sqrt(np.mean(errors ** 2) / n) if errors is not None else 0.0
    return max(scatter, own)


def _step_interval(before, after, se_before, se_after, confidence) -> tuple[float, float]:
    """Interval of (mean_after - mean_before) / |mean_before|, Welch-Satterthwaite degrees of
    freedom; mean_before's own uncertainty is left out of the denominator (a step of a few %)."""
    base = abs(before.mean())
    if base == 0:
        return (math.nan, math.nan)
    se = math.hypot(se_before, se_after)
    step = after.mean() - before.mean()
    if se == 0:
        return (float(step / base), float(step / base))
    terms = [se_before ** 4 / (len(before) - 1) if len(before) > 1 else 0.0,
             se_after ** 4 / (len(after) - 1) if len(after) > 1 else 0.0]
    df = se ** 4 / sum(terms) if sum(terms) > 0 else max(len(before) + len(after) - 2, 1)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return (float((step - half) / base), float((step + half) / base))


def _describe(series, errors, bounds, index, p_value, q_hat, confidence) -> ChangePoint:
    k = bounds.index(index)
    lo, hi = bounds[k - 1], bounds[k + 1]
    before, after = series[lo:index], series[index:hi]
    err_b = errors[lo:index] if errors is not None else None
    err_a = errors[index:hi] if errors is not None else None
    mean_b, mean_a = float(before.mean()), float(after.mean())
    step = mean_a - mean_b
    return ChangePoint(
        index=index, mean_before=mean_b, mean_after=mean_a, step=step,
        rel_step=step / abs(mean_b) if mean_b else math.nan,
        rel_step_interval=_step_interval(before, after, _side_se(before, err_b), _side_se(after, err_a), confidence),
        p_value=p_value, q_hat=q_hat, n_before=len(before), n_after=len(after),
    )


def detect_change_points(
    values: Sequence[float],
    *,
    std_errors: Sequence[float] | None = None,
    alpha: float = ALPHA,
    min_size: int = MIN_SIZE,
    permutations: int = PERMUTATIONS,
    power: float = POWER,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> list[ChangePoint]:
    """Significant change points of ``values`` (commit order), sorted by index.

    ``std_errors`` (optional, one per value, the value's own standard error) only widen the
    reported intervals: the search and its test read the values. Fewer than ``2 * min_size``
    values have no change point yet (a step needs ``min_size`` commits on each side). A non-finite
    value is refused with one line naming its position.
    """
    series = as_series(values)
    errors = None
    if std_errors is not None:
        errors = np.asarray(std_errors, dtype=float).ravel()
        if errors.shape != series.shape:
            raise HistoryValueError(_SE_LENGTH.format(got=errors.size, expected=series.size))
        bad = np.flatnonzero(~np.isfinite(errors) | (errors < 0))
        if bad.size:
            raise HistoryValueError(_SE_INVALID.format(index=int(bad[0]), value=float(errors[bad[0]])))
    _check("alpha", 0 < alpha < 1, "in (0, 1)", alpha)
    whole = (int, np.integer)
    _check("min_size", isinstance(min_size, whole) and min_size >= 2, "an integer >= 2", min_size)
    _check("permutations", isinstance(permutations, whole) and permutations >= 1, "an integer >= 1", permutations)
    _check("power", 0 < power < 2, "in (0, 2)", power)
    _check("confidence", 0 < confidence < 1, "in (0, 1)", confidence)

    d = np.abs(series[:, None] - series[None, :]) ** power
    rng = np.random.default_rng(seed)
    bounds, found, memo = [0, len(series)], [], {}
    while True:
        segments = _segments(bounds)
        for seg in segments:
            if seg not in memo:
                s, e = seg
                split = _best_split(d[s:e, s:e], min_size)
                memo[seg] = None if split is None else (s + split[0], split[1])
        candidates = [memo[seg] for seg in segments if memo[seg] is not None]
        if not candidates:
            break
        index, q_hat = max(candidates, key=lambda c: c[1])
        p = _p_value(d, segments, q_hat, min_size=min_size, permutations=permutations, alpha=alpha, rng=rng)
        if p > alpha:
            break
        found.append((index, p, q_hat))
        bounds = sorted(bounds + [index])
    return [_describe(series, errors, bounds, i, p, q, confidence) for i, p, q in sorted(found)]


def classify(change: float, metric: str) -> str:
    """``regression``, ``improvement`` or ``unchanged`` for a signed change (a step, a slope) of
    ``metric``, whose better direction comes from :data:`quantbench.results.METRICS`."""
    spec = metric_spec(metric)
    if spec is None:
        raise UnknownNameError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    if change == 0 or math.isnan(change):
        return UNCHANGED
    worse = change > 0 if spec.better == "lower" else change < 0
    return REGRESSION if worse else IMPROVEMENT
