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

The interval is the delta method on the log of the crossing rate, with t quantiles on the fit's
residual degrees of freedom (quasi-likelihood's): a capacity is positive, and its interval is a ratio
either side. tests/unit/serving/test_capacity_validation.py checks its median and its coverage
against queueing theory over many seeds. (Fieller's interval was tried: with
9 to 11 points of a few hundred queries the slope is often not significant at 95 %, and it was then
unbounded in 30 to 70 % of the searches.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

#: The fit needs at least this many points (two parameters and a dispersion).
MIN_POINTS = 3
LEVEL = 0.95
#: A crossing more than this factor beyond the fitted points' rates is refused as an extrapolation. Not
#: closer: on the simulated queues a crossing a little beyond the highest knee point is common and right
#: (refusing those beyond 1.25x dropped the M/M/1 interval's coverage from 82 % to 80 % and the
#: replicated queue's from 85 % to 80 %; 1.1x, to 72 %).
EXTRAPOLATION = 1.5
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
    #: With points from several independently started systems: each one's crossing, the standard errors
    #: between and within them, and which of the two intervals (the wider) was given.
    replicates: tuple[float, ...] = ()
    se_between: float | None = None
    se_within: float | None = None
    interval_from: str = ""

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.low is None else (self.low, self.high)

    def describe(self) -> dict[str, object]:
        out = {"estimate": _round(self.estimate), "ci95": None if self.low is None else
               [_round(self.low), _round(self.high)], "se": _round(self.se), "points": self.points,
               "dispersion": _round(self.dispersion), "slope_per_qps": _round(self.slope), "reason": self.reason or None}
        if self.replicates:
            out.update(replicate_crossings=[_round(c) for c in self.replicates], se_between=_round(self.se_between),
                       se_within=_round(self.se_within), interval_from=self.interval_from)
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


@dataclass(frozen=True)
class _Fit:
    """A logistic fit of the over-bound share on the rate, on the centred and scaled axis."""

    a: float
    b: float
    cov: np.ndarray  # of (a, b), the dispersion included
    dispersion: float
    centre: float
    scale: float
    target: float  # logit(allowed)

    def crossing(self, intercept: float | None = None) -> float:
        a = self.a if intercept is None else intercept
        return self.centre + (self.target - a) / self.b * self.scale


def _fit(x: np.ndarray, k: np.ndarray, n: np.ndarray, allowed: float) -> _Fit | Crossing:
    """The pooled fit, or a Crossing saying why there is none."""
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
    return _Fit(float(a), float(b), dispersion * unscaled, dispersion, centre, scale,
                math.log(allowed / (1 - allowed)))


def _within_se(fit: _Fit, intercept: float | None = None) -> float:
    """The crossing's standard error by the delta method on (a, b)."""
    a = fit.a if intercept is None else intercept
    gradient = np.array([-1.0 / fit.b, -(fit.target - a) / fit.b ** 2])
    return math.sqrt(float(gradient @ fit.cov @ gradient)) * fit.scale


def fit_crossing(rates, over, queries, allowed: float, *, level: float = LEVEL) -> Crossing:
    """The crossing rate of ``over / queries`` through ``allowed`` (0.01 at p99), with its interval."""
    x, k, n = (np.asarray(v, dtype=float) for v in (rates, over, queries))
    fit = _fit(x, k, n, allowed)
    if isinstance(fit, Crossing):
        return fit
    m = len(x)
    estimate = fit.crossing()
    outside = _outside(estimate, x)
    if outside:
        return Crossing(None, points=m, reason=outside)
    se = _within_se(fit)
    low, high = _log_interval(estimate, se / estimate, float(stats.t.ppf(0.5 + level / 2, m - 2)))
    return Crossing(float(estimate), low=low, high=high, se=se, points=m, dispersion=fit.dispersion,
                    slope=float(fit.b / fit.scale))


def _outside(estimate: float, rates: np.ndarray) -> str:
    """Why a fitted crossing cannot stand, or "": far outside the rates it was fitted on (EXTRAPOLATION)
    it is an extrapolation of the logistic curve, not a measurement (one hiccup point below a knee that held
    everywhere above it put a classifier's crossing at 175 QPS, with 77 QPS the highest rate measured)."""
    low, high = float(rates.min()), float(rates.max())
    if low / EXTRAPOLATION <= estimate <= high * EXTRAPOLATION:
        return ""
    return (f"the fitted crossing, {estimate:.4g} QPS, lies beyond {EXTRAPOLATION:g}x the rates measured near the "
            f"knee ({low:.4g} to {high:.4g} QPS): an extrapolation, not a measurement")


def _log_interval(estimate: float, se_log: float, t: float) -> tuple[float, float]:
    """The interval on the log scale: a capacity is a positive rate and what moves it (a slower machine,
    a shallower knee) scales it, so its interval is ``estimate x exp(±t se)``: never below zero, and
    as wide in ratio above as below (the delta method on the rate itself reached below zero where a
    knee's slope was shallow)."""
    return float(estimate * math.exp(-t * se_log)), float(estimate * math.exp(t * se_log))


def _replicate_intercept(fit: _Fit, z: np.ndarray, k: np.ndarray, n: np.ndarray) -> float:
    """The intercept of one replicate's points under the pooled slope: the one at which the fit expects
    as many queries over the bound as the replicate had. A replicate with none over (or all) has no
    finite intercept; half a query moved in (Haldane's correction) keeps it finite and on its side."""
    observed = float(np.clip(k.sum(), 0.5, n.sum() - 0.5))

    def gap(a: float) -> float:
        return float((n * _expit(a + fit.b * z)).sum()) - observed

    reach = 60.0 + abs(fit.b) * float(np.abs(z).max())  # expit saturates beyond: the root lies inside
    return float(optimize.brentq(gap, -reach, reach))


def fit_replicated_crossing(rates, over, queries, replicates, allowed: float, *, level: float = LEVEL) -> Crossing:
    """The crossing of points measured on several independently started systems (``replicates``: one
    id per point), with an interval that holds the spread between them.

    Each system (a server process, started afresh, later in the run) may sit higher or lower: on a
    shared VM the run-to-run spread of an LLM server's capacity was 17 % (sd), while one run's pooled
    fit, whose scatter is the arrivals' alone, gave intervals of about ±14 % that missed each other.
    So the points share the pooled fit's slope, each replicate gets its own intercept (the crossing
    that its own counts give), and the capacity is the geometric mean of the replicates' crossings. Its
    interval is Student's t on the spread of their logs (replicates - 1 degrees of freedom, the slope's
    own error added): the process-level statistics the gate uses, one figure per process. It is never
    narrower than the pooled fit's: three replicates that agree by chance do not make the capacity
    surer than its counts.
    """
    x, k, n = (np.asarray(v, dtype=float) for v in (rates, over, queries))
    ids = np.asarray(replicates)
    groups = sorted(set(ids.tolist()))
    if len(groups) < 2:
        return fit_crossing(x, k, n, allowed, level=level)
    fit = _fit(x, k, n, allowed)
    if isinstance(fit, Crossing):
        return fit
    m, r = len(x), len(groups)
    z = (x - fit.centre) / fit.scale
    intercepts = np.array([_replicate_intercept(fit, z[ids == g], k[ids == g], n[ids == g]) for g in groups])
    crossings = np.array([fit.crossing(a) for a in intercepts])
    if not np.all(crossings > 0):
        return Crossing(None, points=m, reason="a system's crossing is not a positive rate: "
                        + ", ".join(f"{c:.4g}" for c in crossings) + " QPS")
    # On the log scale, as the gate judges a capacity: a machine that serves slower scales it.
    logs = np.log(crossings)
    estimate = float(math.exp(logs.mean()))
    outside = _outside(estimate, x)
    if outside:
        return Crossing(None, points=m, reason=outside)
    at = fit.target - fit.b * (estimate - fit.centre) / fit.scale  # the intercept whose crossing it is
    # The spread of the systems' crossings carries the intercepts' noise, within and between systems;
    # the pooled slope is common to them all, so its error is added once.
    slope_part = (estimate - fit.centre) / fit.b / estimate  # d log(crossing) / d b
    se_between = math.sqrt(float(logs.var(ddof=1)) / r + slope_part ** 2 * float(fit.cov[1, 1]))
    se_within = _within_se(fit, at) / estimate
    t_between, t_within = (float(stats.t.ppf(0.5 + level / 2, df)) for df in (r - 1, m - 2))
    between = t_between * se_between >= t_within * se_within
    se_log, t = (se_between, t_between) if between else (se_within, t_within)
    low, high = _log_interval(estimate, se_log, t)
    return Crossing(estimate, low=low, high=high, se=se_log * estimate, points=m, dispersion=fit.dispersion,
                    slope=float(fit.b / fit.scale), replicates=tuple(float(c) for c in crossings),
                    se_between=se_between * estimate, se_within=se_within * estimate,
                    interval_from="replicates" if between else "pooled fit")
