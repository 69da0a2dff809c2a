"""The capacity at a percentile bound, with an interval, from the points near the knee.

"p99 <= 25 ms" holds up to the rate at which 1 % of queries take longer than 25 ms. Each Server
point counts its queries over the bound (``k`` of ``n``). Near the knee the share over the bound
grows about exponentially with the rate (exactly so in an M/M/1 queue) and saturates at 1 far above
it, so the counts are fitted with a logistic regression, ``logit(share) = a + b x rate``, and the
capacity is the rate where the fitted share equals the share the percentile allows (``1 - p``).

Why counts and not each point's empirical p99: a short test's p99 is biased low (the queue starts
empty, and its latencies are correlated, so a few bursts decide the tail). A bisection on it landed
4 to 10 % above the theory on simulated M/D/1 and M/M/1 queues, and one search has no interval at
all. The share over the bound is an unbiased count whatever the correlation; the correlation only
makes the counts vary more than a binomial's, which the quasi-likelihood dispersion (Pearson's
chi-square over the residual degrees of freedom, never below 1) puts into the interval. Every point
has its own LoadGen seeds, so the points are independent replicates and their scatter is the
arrivals' noise, not one schedule replayed.

The interval is the delta method on the crossing rate, with t quantiles on the fit's residual
degrees of freedom (quasi-likelihood's). tests/unit/serving/test_capacity_validation.py checks its
median and its coverage against queueing theory over many seeds. (Fieller's interval was tried: with
9 to 11 points of a few hundred queries the slope is often not significant at 95 %, and it was then
unbounded in 30 to 70 % of the searches.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: The fit needs at least this many points (two parameters and a dispersion).
MIN_POINTS = 3
LEVEL = 0.95
#: Why a figure has no fit when none of its queries was over the bound near the knee.
NONE_OVER = "no query over the bound at any point near the knee"


@dataclass(frozen=True)
class Crossing:
    """The rate at which the fitted share over the bound reaches ``allowed``; None with ``reason``."""

    estimate: float | None
    low: float | None = None
    high: float | None = None
    se: float | None = None
    points: int = 0
    dispersion: float | None = None
    slope: float | None = None  # d log(share) / d rate, per QPS
    reason: str = ""
    #: No point near the knee had more than the allowed share of its queries over this bound (none at
    #: all, or too few): the crossing lies above them all.
    held_everywhere: bool = False

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None else (self.low, self.high)

    def describe(self) -> dict[str, object]:
        out = {"estimate": _round(self.estimate), "ci95": None if self.low is None else
               [_round(self.low), _round(self.high)], "se": _round(self.se), "points": self.points,
               "dispersion": _round(self.dispersion), "slope_per_qps": _round(self.slope), "reason": self.reason or None}
        return {k: v for k, v in out.items() if v is not None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _expit(eta: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-eta))


def _logistic_fit(x: np.ndarray, k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of logit(share) = a + b x for k of n over the bound, by iteratively reweighted least
    squares, and the unscaled covariance (X'WX)^-1."""
    X = np.column_stack([np.ones_like(x), x])
    share = (k.sum() + 0.5) / (n.sum() + 1.0)
    beta = np.array([math.log(share / (1 - share)), 0.0])
    for _ in range(100):
        p = np.clip(_expit(X @ beta), 1e-12, 1 - 1e-12)
        w = n * p * (1 - p)
        z = X @ beta + (k - n * p) / w
        new = np.linalg.solve(X.T @ (w[:, None] * X), X.T @ (w * z))
        done = np.max(np.abs(new - beta)) < 1e-10
        beta = new
        if done:
            break
    p = np.clip(_expit(X @ beta), 1e-12, 1 - 1e-12)
    return beta, np.linalg.inv(X.T @ ((n * p * (1 - p))[:, None] * X))


def fit_crossing(rates, over, queries, allowed: float, *, level: float = LEVEL) -> Crossing:
    """The crossing rate of ``over / queries`` through ``allowed`` (0.01 at p99), with its interval."""
    x = np.asarray(rates, dtype=float)
    k = np.asarray(over, dtype=float)
    n = np.asarray(queries, dtype=float)
    m = len(x)
    if m < MIN_POINTS:
        return Crossing(None, points=m, reason=f"{m} point(s) near the knee; the fit needs {MIN_POINTS}")
    if k.sum() == 0:
        return Crossing(None, points=m, reason=NONE_OVER, held_everywhere=True)
    if np.all(k / n >= allowed) or np.all(k / n <= allowed):
        side = "over" if np.all(k / n >= allowed) else "within"
        return Crossing(None, points=m, reason=f"every point near the knee was {side} the allowed share: no crossing to fit",
                        held_everywhere=side == "within")
    # Centre and scale the rates: the fit is then well conditioned at any QPS.
    centre, scale = float(x.mean()), float(x.std()) or 1.0
    beta, unscaled = _logistic_fit((x - centre) / scale, k, n)
    a, b = beta
    if not b > 0:
        return Crossing(None, points=m, reason="the share over the bound does not grow with the rate near the knee")
    p = np.clip(_expit(a + b * (x - centre) / scale), 1e-12, 1 - 1e-12)
    dispersion = max(1.0, float(((k - n * p) ** 2 / (n * p * (1 - p))).sum() / (m - 2)))
    cov = dispersion * unscaled
    target = math.log(allowed / (1 - allowed))
    z = (target - a) / b  # the crossing on the scaled axis
    gradient = np.array([-1.0 / b, -(target - a) / b ** 2])
    se = math.sqrt(float(gradient @ cov @ gradient)) * scale
    estimate = centre + z * scale
    half = float(stats.t.ppf(0.5 + level / 2, m - 2)) * se
    return Crossing(float(estimate), low=float(estimate - half), high=float(estimate + half), se=se, points=m,
                    dispersion=dispersion, slope=float(b / scale))
