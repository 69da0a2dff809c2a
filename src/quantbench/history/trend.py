"""Slow creep in one metric's history: the Mann-Kendall test with the Theil-Sen slope.

A step is found by :mod:`quantbench.history.changepoints`; a creep of half a percent per commit is
not a step anywhere, and each pair of neighbouring commits is inside the noise. Over a segment of
the history, Mann-Kendall (Kendall's tau of the values against their commit order,
``scipy.stats.kendalltau``: exact for short series without ties) asks whether the values rise or fall
with the commits at all, and Theil-Sen (``scipy.stats.theilslopes``: the median of the pairwise
slopes, with its interval) says by how much, robust to a slow run or two. The slope is reported per
commit, in the metric's unit and as a share of the segment's median.

:func:`current_trend` tests the segment since the last change point, so that an old step does not
read as a trend. But E-divisive also cuts a creep into steps (a creep has a different mean on each
side of any cut), which would leave only the creep's tail to test, with too few points and a slope
measured on part of it. So before testing, the change points are asked whether they are steps or a
creep: from each change point's preceding segment to the head, levels between the change points are
compared with one bend (a level that turns into a slope), by Schwarz's criterion (see
:func:`trend_start`); where the bend wins, the trend is measured from where it began.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from quantbench.history.changepoints import ChangePoint, HistoryValueError, as_series

#: Significance level of the Mann-Kendall test, the change points' level for the same reason: the
#: test is exact, so a history without change shows a trend with this probability (docs/history.md).
TREND_ALPHA = 0.02
#: Confidence of the Theil-Sen slope interval.
CONFIDENCE = 0.95

_TOO_SHORT = "a trend needs at least {need} values from position {start} (alpha {alpha}): got {got}"


@dataclass(frozen=True)
class Trend:
    """The trend of ``values[start:stop]``."""

    start: int
    stop: int
    #: Theil-Sen slope, metric units per commit, and its interval.
    slope: float
    slope_interval: tuple[float, float]
    #: The same per commit as a share of the segment's median (0.005 = +0.5 %/commit; NaN at median 0).
    rel_slope: float
    rel_slope_interval: tuple[float, float]
    #: Kendall's tau against commit order and the Mann-Kendall p-value (two-sided).
    tau: float
    p_value: float
    significant: bool


def min_points(alpha: float = TREND_ALPHA) -> int:
    """The fewest values whose exact two-sided Mann-Kendall p-value can fall below ``alpha``: all
    n values in order give p = 2 / n!, so fewer points cannot show a trend however steep."""
    n = 3
    while 2 / math.factorial(n) >= alpha:
        n += 1
    return n


def trend(values: Sequence[float], *, start: int = 0, alpha: float = TREND_ALPHA,
          confidence: float = CONFIDENCE) -> Trend:
    """Mann-Kendall and Theil-Sen on ``values[start:]`` (commit order). Refuses, with one line, a
    segment too short to reach ``alpha`` and any non-finite value."""
    if not 0 < alpha < 1:
        raise HistoryValueError(f"alpha must be in (0, 1), got {alpha!r}")
    series = as_series(values)
    segment = series[start:]
    need = min_points(alpha)
    if len(segment) < need:
        raise HistoryValueError(_TOO_SHORT.format(need=need, start=start, alpha=alpha, got=len(segment)))
    x = np.arange(len(segment))
    stop = start + len(segment)
    if np.ptp(segment) == 0:  # a constant segment: no order to test, no slope
        return Trend(start, stop, 0.0, (0.0, 0.0), 0.0, (0.0, 0.0), 0.0, 1.0, False)
    kendall = stats.kendalltau(x, segment)
    slope, _, low, high = stats.theilslopes(segment, x, alpha=confidence)
    median = float(np.median(segment))
    scale = abs(median) if median else math.nan
    p_value = float(kendall.pvalue)
    return Trend(
        start=start, stop=stop, slope=float(slope), slope_interval=(float(low), float(high)),
        rel_slope=float(slope) / scale, rel_slope_interval=(float(low) / scale, float(high) / scale),
        tau=float(kendall.statistic), p_value=p_value, significant=p_value < alpha,
    )


def _bic(rss: float, n: int, params: int) -> float:
    """Schwarz's criterion for a least-squares fit: lower is better."""
    return n * math.log(max(rss, 1e-300) / n) + params * math.log(n)


def _bend(segment: np.ndarray) -> tuple[int, float]:
    """(where, residual sum) of the best bend on ``segment``: a level up to ``where``, then a slope
    (``where`` 0: a straight line)."""
    x = np.arange(len(segment))
    best, where = np.inf, 0
    for h in range(0, len(segment) - 2):
        design = np.column_stack([np.ones(len(segment)), np.maximum(x - h, 0)])
        _, residual, *_ = np.linalg.lstsq(design, segment, rcond=None)
        rss = float(residual[0]) if residual.size else 0.0
        if rss < best:
            best, where = rss, h
    return where, best


def _levels_rss(segment: np.ndarray, cuts: list[int]) -> float:
    """Residual sum of one level per piece between ``cuts``."""
    edges = [0] + cuts + [len(segment)]
    pieces = zip(edges[:-1], edges[1:])
    return sum(float(((segment[a:b] - segment[a:b].mean()) ** 2).sum()) for a, b in pieces)


def trend_start(values: Sequence[float], change_points: Sequence[ChangePoint]) -> int:
    """Where the current trend segment begins.

    For each change point, from the first on, the history from the segment before it to the head
    is fitted two ways: levels between the change points (a level and a place per step), and one
    bend (a level, then a slope from some commit: three numbers). The first region where the bend
    wins by Schwarz's criterion is a creep cut into steps, and the trend starts where it bent;
    where the levels always win, the trend starts at the last change point."""
    series = as_series(values)
    cuts = sorted(cp.index for cp in change_points)
    if not cuts:
        return 0
    for k, lo in enumerate([0] + cuts[:-1]):
        region = series[lo:]
        inner = [c - lo for c in cuts[k:]]
        where, bend_rss = _bend(region)
        steps = _bic(_levels_rss(region, inner), len(region), 2 * len(inner) + 1)
        if _bic(bend_rss, len(region), 3) < steps:
            return lo + where
    return cuts[-1]


def current_trend(values: Sequence[float], change_points: Sequence[ChangePoint], *,
                  alpha: float = TREND_ALPHA, confidence: float = CONFIDENCE) -> Trend | None:
    """The trend since the last step (see :func:`trend_start`); None while that segment is too
    short to test at ``alpha``."""
    series = as_series(values)
    start = trend_start(series, change_points)
    if len(series) - start < min_points(alpha):
        return None
    return trend(series, start=start, alpha=alpha, confidence=confidence)
