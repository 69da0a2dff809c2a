"""The capacity search: the highest Poisson arrival rate at which the SLO's percentile holds.

"p99 <= 25 ms" holds up to the rate at which 1 % of queries exceed 25 ms. The search finds that
rate in three steps, every point a LoadGen Server test with its own seeds (recorded):

1. **Bisection** over ``server_target_qps`` in ``[0, offline]``, the offline throughput bounding
   it from above. A point *meets* the SLO when the share of its queries over each bound is at most
   the share the percentile allows (1 % at p99): LoadGen's over-latency count (its clock starts at
   the scheduled time), the system's own count for TTFT and TPOT. It stops when the bracket is within
   the suite's precision, after the suite's maximum number of points, or when nothing meets the SLO
   down to ``precision`` x the offline throughput.
2. **Probing above**: where every point met the SLO up to the bracket's top, the search tries the
   offline throughput itself and then 1.5x, up to ``PROBE_LIMIT`` x it, since a queue may serve
   arrivals spread in time faster than all at once. Met everywhere: "SLO not binding", and the
   capacity is only a lower bound.
3. **The knee**: ``knee_points`` more points spread over the bracket with new seeds, then a logistic
   fit of every nearby point's over-bound count gives the capacity with a 95 % interval
   (capacity_fit.py says why counts and not each point's p99). With ``replicates`` > 1 the knee's
   points are measured again on freshly started systems, and the interval holds the spread between
   them. Where the fit cannot be made (too few points near the knee), the capacity is the highest
   rate that met the SLO, and says so.

LoadGen's own verdict (VALID: the p99 *upper bound* at 99 % confidence, early stopping) is kept per
point and as ``loadgen_valid_qps``, the highest VALID rate: with a few hundred queries it passes
only with no query over the bound, so it is a stricter figure than the percentile named
(early_stopping.py). tests/unit/serving/test_capacity_validation.py checks the whole search against
M/D/1 and M/M/1 queues over many seeds.

When no rate passes, :func:`no_rate_line` says so in one line: "no rate meets p99 <= 80 ms: at the
lowest rate, 3.1 QPS, p99 was 112 ms".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from quantbench.errors import QuantbenchError
from quantbench.serving.capacity_fit import Crossing, fit_crossing, fit_replicated_crossing
from quantbench.serving.logs import PointResult

LABELS = {"latency": "p{p}", "ttft": "TTFT p{p}", "tpot": "TPOT p{p}"}
FIGURE_NAMES = {"latency": "latency", "ttft": "TTFT", "tpot": "TPOT"}


#: Probing above the offline throughput stops at this multiple of it.
PROBE_LIMIT = 2.0
PROBE_STEP = 1.5
#: Knee points spread over [highest met / KNEE_SPREAD, lowest missed x KNEE_SPREAD]; the fit takes
#: every point within [highest met / FIT_WINDOW, lowest missed x FIT_WINDOW]. Far above the knee a
#: queue is unstable and its share over the bound saturates: no longer the fit's exponential.
KNEE_SPREAD = 1.2
FIT_WINDOW = 1.5


def over_counts(point: PointResult, bounds_ms: dict[str, float]) -> dict[str, tuple[int, int]]:
    """``{figure: (queries over its bound, queries)}`` of one Server point: LoadGen's over-latency
    count for ``latency``, the system's own per-figure count for TTFT and TPOT."""
    out: dict[str, tuple[int, int]] = {}
    for name in bounds_ms:
        if name == "latency" and point.overlatency_queries is not None and point.query_count:
            out[name] = (int(point.overlatency_queries), int(point.query_count))
        elif name in (point.client.get("over_bound") or {}) and point.client.get("completed"):
            out[name] = (int(point.client["over_bound"][name]), int(point.client["completed"]))
    return out


def meets(point: PointResult, bounds_ms: dict[str, float], percentile: float) -> bool:
    """Whether every bound's share of queries over it is within the percentile's allowance."""
    counts = over_counts(point, bounds_ms)
    if set(counts) != set(bounds_ms):
        return False  # a figure nobody counted is not met
    allowed = 1 - percentile
    return all(k <= allowed * n + 1e-9 for k, n in counts.values())


@dataclass
class SearchResult:
    upper_qps: float
    points: list[PointResult] = field(default_factory=list)
    capacity: PointResult | None = None  # the highest-rate point that met the SLO
    stopped: str = ""
    message: str | None = None  # the one-liner when no rate met the SLO
    failed: bool = False  # some point missed the SLO (it bound the search)
    fits: dict[str, Crossing] = field(default_factory=dict)  # per SLO figure, from the knee's points
    allowed_share: float | None = None

    fit_window_qps: float | None = None  # the highest rate among the points the fits took
    replicates: int = 1  # independently started systems the knee was measured on
    precision: float = 0.0  # the search's: how far above the held rates a crossing may still stand (binding_fit)
    warm_up_point: PointResult | None = None  # discarded before the search (serving/cell.py), kept for the record

    @property
    def binding_fit(self) -> tuple[str, Crossing] | None:
        """The figure whose fitted crossing is lowest (the one that binds) and its fit, else None.

        A figure whose share over its bound stayed within the allowance at every point near the knee
        (no query over it, or too few) has no fit, and does not bind there: its crossing lies above the
        highest of those points. So it stands aside when the fitted crossing is below that rate (TPOT
        held at every rate while TTFT failed), or above it by no more than the search's precision: the
        capacity then lies between the two, as close as the suite asked the bisection to bracket it
        (TTFT crossed at 5.324 QPS where TPOT held up to 5.309). Any other figure without a fit leaves
        the capacity to the bisection."""
        fitted = [(name, c) for name, c in self.fits.items() if c.estimate is not None]
        unfitted = [c for c in self.fits.values() if c.estimate is None]
        if not fitted or not all(c.held_everywhere for c in unfitted):
            return None
        name, crossing = min(fitted, key=lambda item: item[1].estimate)
        if unfitted and (self.fit_window_qps is None
                         or crossing.estimate > self.fit_window_qps * (1 + self.precision)):
            return None
        return name, crossing

    def not_binding(self) -> list[str]:
        """Figures that stood aside for the fit: within their allowance at every point near the knee."""
        if self.binding_fit is None:
            return []
        return [name for name, c in self.fits.items() if c.estimate is None and c.held_everywhere]

    @property
    def capacity_qps(self) -> float | None:
        if self.capacity is None:
            return None
        fit = self.binding_fit
        return fit[1].estimate if fit and self.failed else self.capacity.target_qps

    @property
    def capacity_interval(self) -> tuple[float, float] | None:
        fit = self.binding_fit
        return fit[1].interval if fit and self.failed and self.capacity is not None else None

    @property
    def capacity_se(self) -> float | None:
        """The interval's width over 2 x 1.96: the standard error a normal reading of the interval needs
        (the gate's). Not the fit's own se: with 3 systems the interval is Student's t on 2 degrees of
        freedom, 2.2 times wider than 1.96 se, and on the log scale."""
        interval = self.capacity_interval
        return None if interval is None else (interval[1] - interval[0]) / (2 * 1.96)

    @property
    def loadgen_valid_qps(self) -> float | None:
        """The highest rate LoadGen called VALID (its early-stopping verdict), else None."""
        valid = [p.target_qps for p in self.points if p.valid]
        return max(valid) if valid else None

    @property
    def slo_binding(self) -> bool | None:
        """Did the SLO bound the capacity? False when every point met it, up to the probes above the
        offline throughput: the capacity is then a lower bound (None: no capacity)."""
        if self.capacity is None:
            return None
        return self.failed

    def bound_by(self) -> str | None:
        """What set the capacity, in words, for the record and the report."""
        if self.slo_binding is None:
            return None
        if self.slo_binding:
            return "the SLO: a point above it missed the percentile"
        return (f"SLO not binding: every point met it, up to {self.capacity.target_qps:.4g} QPS against the "
                f"{self.upper_qps:.4g} QPS offline throughput; the capacity is a lower bound")

    def method(self) -> str | None:
        """How the capacity figure was found, in one line."""
        if self.capacity is None:
            return None
        if not self.failed:
            return "the highest rate tried, every point having met the SLO (a lower bound, no interval)"
        fit = self.binding_fit
        if fit:
            name, crossing = fit
            aside = "".join(f"; {FIGURE_NAMES[other]} not binding (within its allowance at every point up to "
                            f"{self.fit_window_qps:.4g} QPS)" for other in self.not_binding())
            if crossing.replicates:
                how = (f"the geometric mean of {len(crossing.replicates)} independently started systems' crossings "
                       f"(a common slope, an intercept each); 95 % interval " + (
                           f"by Student's t on their spread ({len(crossing.replicates) - 1} df, log scale)"
                           if crossing.interval_from == "replicates" else
                           "by the delta method (the pooled fit's, wider than the systems' spread; log scale)"))
            else:
                how = "95 % interval by the delta method (log scale)"
            return (f"{crossing.points} points' {FIGURE_NAMES[name]} over-bound counts fitted (logistic, dispersion "
                    f"{crossing.dispersion:.2g}): the rate where {self.allowed_share:.0%} of queries exceed the bound; "
                    f"{how}{aside}")
        why = [f"{name}: {c.reason}" for name, c in self.fits.items() if c.estimate is None]
        fitted = [(name, c) for name, c in self.fits.items() if c.estimate is not None]
        if fitted and self.fit_window_qps is not None:
            name, crossing = min(fitted, key=lambda item: item[1].estimate)
            if crossing.estimate > self.fit_window_qps * (1 + self.precision):  # nor known to hold up there
                why.insert(0, f"{name}: crosses at {crossing.estimate:.4g} QPS, more than the search's precision "
                              f"({self.precision:.0%}) above {self.fit_window_qps:.4g} QPS, the highest rate where "
                              "the other figures were measured")
        return f"the highest rate that met the SLO (bisection; no fit: {'; '.join(why) or 'no knee points'}), no interval"


def _figure(point: PointResult, name: str, percentile: float) -> float | None:
    key = f"p{percentile * 100:g}"
    block = {"latency": point.latency_ms, "ttft": point.ttft_ms, "tpot": point.tpot_ms}[name]
    return block.get(key)


def slo_text(bounds_ms: dict[str, float], percentile: float) -> str:
    """``p99 <= 80 ms`` or ``TTFT p90 <= 500 ms and TPOT p90 <= 50 ms``."""
    p = f"{percentile * 100:g}"
    return " and ".join(f"{LABELS[name].format(p=p)} ≤ {limit:g} ms" for name, limit in bounds_ms.items())


def judged_slo_text(bounds_ms: dict[str, float], percentile: float) -> str:
    """The SLO as a Server verdict judges it: ``p99 upper bound ≤ 80 ms (LoadGen early stopping, 99 %
    confidence)``. Not the empirical p99: with few queries the bound passes only if no query is over
    (serving/early_stopping.py)."""
    from quantbench.serving.early_stopping import CONFIDENCE

    p = f"{percentile * 100:g}"
    bounds = " and ".join(f"{LABELS[name].format(p=p)} upper bound ≤ {limit:g} ms" for name, limit in bounds_ms.items())
    return f"{bounds} (LoadGen early stopping, {CONFIDENCE:.0%} confidence)"


def no_rate_line(bounds_ms: dict[str, float], percentile: float, lowest: PointResult) -> str:
    """The one line when no rate meets the SLO, from the lowest rate tried."""
    p = f"{percentile * 100:g}"
    seen = []
    over = False
    for name, limit in bounds_ms.items():
        value = _figure(lowest, name, percentile)
        seen.append(f"{LABELS[name].format(p=p)} was {'—' if value is None else f'{value:.4g}'} ms")
        over = over or (value is not None and value > limit)
    line = (f"no rate meets {slo_text(bounds_ms, percentile)}: at the lowest rate, {lowest.target_qps:.4g} QPS, "
            + " and ".join(seen))
    if not over and lowest.reasons:  # within the bound there, but LoadGen did not call it VALID
        line += f" (LoadGen: {'; '.join(lowest.reasons)})"
    return line


def fit_knee(points, lo: float, hi: float, bounds_ms: dict[str, float], percentile: float
             ) -> tuple[dict[str, Crossing], float | None]:
    """Each SLO figure's fitted crossing from the points within [lo / FIT_WINDOW, hi x FIT_WINDOW] of the
    bracket (``lo`` met, ``hi`` missed), and the highest rate among those points. Points from more than
    one replicate (independently started systems) are fitted with the spread between them."""
    near = [p for p in points if lo / FIT_WINDOW <= p.target_qps <= hi * FIT_WINDOW]
    fits = {}
    counts = [(p.target_qps, getattr(p, "replicate", 0) or 0, over_counts(p, bounds_ms)) for p in near]
    for name in bounds_ms:
        counted = [(rate, *by_figure[name], replicate) for rate, replicate, by_figure in counts if name in by_figure]
        rates, over, queries, replicates = zip(*counted) if counted else ((), (), (), ())
        fits[name] = fit_replicated_crossing(rates, over, queries, replicates, 1 - percentile)
    return fits, max((p.target_qps for p in near), default=None)


def find_capacity(measure: Callable[[float, int], PointResult], *, upper_qps: float, precision: float,
                  max_points: int, bounds_ms: dict[str, float], percentile: float, min_rate: float = 0.0,
                  min_rate_why: str = "", knee_points: int = 4, seed: int = 0, replicates: int = 1,
                  restart: Callable[[int], None] | None = None) -> SearchResult:
    """Find the capacity with ``measure(rate, seed)``, a LoadGen Server point at that rate and seed.

    ``min_rate`` is the lowest rate a point can be VALID at (below it LoadGen cannot issue its
    minimum of queries within the point's maximum duration, ``min_rate_why`` says so): the search
    never measures below it. Point ``i`` runs with seed ``seed + i``.

    With ``replicates`` > 1 the knee's points are measured ``replicates`` times, each time on a system
    that ``restart(replicate)`` has started afresh (replicate 0 is the bisection's system), so the
    capacity's interval holds the spread between systems and not only the arrivals' (capacity_fit.py).
    """
    if replicates < 1:
        raise QuantbenchError(f"the capacity search needs at least 1 replicate, got {replicates!r}")
    if replicates > 1 and restart is None:
        raise QuantbenchError(f"{replicates} replicates need a restart: a replicate is a freshly started system")
    if not upper_qps or upper_qps <= 0:
        raise QuantbenchError(f"the capacity search needs a positive offline throughput, got {upper_qps!r}")
    result = SearchResult(upper_qps=upper_qps, allowed_share=round(1 - percentile, 6), precision=precision)
    seeds = itertools.count(seed)

    def run(rate: float, replicate: int = 0) -> bool:
        point_seed = next(seeds)
        point = measure(rate, point_seed)
        point.target_qps, point.seed, point.replicate = rate, point_seed, replicate
        point.met = meets(point, bounds_ms, percentile)
        result.points.append(point)
        return point.met

    lo, hi, probing = 0.0, float(upper_qps), False
    while True:
        if len(result.points) >= max_points:
            result.stopped = f"maximum number of points ({max_points})"
            break
        bracketed = lo > 0 and (hi - lo) / hi <= precision
        if bracketed and result.failed:
            result.stopped = f"precision reached: met the SLO at {lo:.4g} QPS, missed it at {hi:.4g} QPS"
            break
        if (bracketed or probing) and not result.failed:
            if lo >= upper_qps * PROBE_LIMIT - 1e-9:
                result.stopped = (f"the SLO was met at every rate up to {lo:.4g} QPS, {PROBE_LIMIT:g}x the offline "
                                  "throughput: SLO not binding")
                break
            probing, rate = True, hi  # at the ceiling itself, then above it
        else:
            rate = (lo + hi) / 2
            if rate < min_rate:
                if hi > min_rate * 1.01 and not any(p.target_qps <= min_rate * 1.01 for p in result.points):
                    rate = min_rate  # once at the lowest rate that can pass, then no lower
                else:
                    result.stopped = f"nothing met the SLO down to {min(hi, upper_qps):.4g} QPS; {min_rate_why}"
                    break
        if run(rate):
            lo, result.capacity = rate, result.points[-1]
            if probing:
                hi = min(rate * PROBE_STEP, upper_qps * PROBE_LIMIT)
        else:
            hi, result.failed, probing = rate, True, False
        if lo == 0 and hi <= upper_qps * precision:
            result.stopped = (f"nothing met the SLO down to {hi:.4g} QPS, {precision:.0%} of the offline throughput: "
                              "a lower rate leaves the queue as empty")
            break
    if result.capacity is not None and result.failed:
        result.replicates = replicates
        for replicate in range(replicates):
            if replicate:
                restart(replicate)
            for rate in np.linspace(max(lo / KNEE_SPREAD, min_rate), hi * KNEE_SPREAD, knee_points):
                run(float(rate), replicate)
        result.fits, result.fit_window_qps = fit_knee(result.points, lo, hi, bounds_ms, percentile)
    if result.capacity is None and result.points:
        lowest = min(result.points, key=lambda p: p.target_qps)
        result.message = no_rate_line(bounds_ms, percentile, lowest)
    elif result.capacity is None:
        result.message = (f"no rate meets {slo_text(bounds_ms, percentile)}: the offline throughput, "
                          f"{upper_qps:.4g} QPS, is below {min_rate:.4g} QPS; {min_rate_why}")
    return result
