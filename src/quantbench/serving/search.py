"""The capacity search: the highest Poisson arrival rate LoadGen calls VALID at the SLO.

The offline throughput (LoadGen's Offline scenario: every query at once) bounds the rate from
above: no arrival process is served faster. The search is a bisection over ``server_target_qps``
in ``[0, offline]``: a VALID point raises the lower end, an INVALID one lowers the upper end. It
stops when the bracket is within the suite's precision of its upper end (5 % by default), after the
suite's maximum number of points, or when nothing is VALID down to ``precision`` x the offline
throughput (there the queue is nearly always empty, so a lower rate cannot help). Every point is
recorded. LoadGen's own ``FindPeakPerformance`` needs a passing lower bound and Server results are
not strictly monotonic in the rate, hence a bounded bisection whose every point is kept.

When no rate passes, :func:`no_rate_line` says so in one line: "no rate meets p99 <= 80 ms: at the
lowest rate, 3.1 QPS, p99 was 112 ms".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from quantbench.errors import QuantbenchError
from quantbench.serving.logs import PointResult

LABELS = {"latency": "p{p}", "ttft": "TTFT p{p}", "tpot": "TPOT p{p}"}


@dataclass
class SearchResult:
    upper_qps: float
    points: list[PointResult] = field(default_factory=list)
    capacity: PointResult | None = None
    stopped: str = ""
    message: str | None = None  # the one-liner when no rate met the SLO

    @property
    def capacity_qps(self) -> float | None:
        return None if self.capacity is None else self.capacity.target_qps

    @property
    def slo_binding(self) -> bool | None:
        """Did the SLO bound the capacity? False when every point was VALID: the capacity is then the
        highest rate the search tried below the offline throughput, not a rate the SLO stopped (None:
        no capacity)."""
        if self.capacity is None:
            return None
        return any(not p.valid for p in self.points)

    def bound_by(self) -> str | None:
        """What set the capacity, in words, for the record and the report."""
        if self.slo_binding is None:
            return None
        if self.slo_binding:
            return "the SLO: an INVALID point lies above it"
        return (f"SLO not binding: every point was VALID, up to {self.capacity_qps:.4g} QPS of the "
                f"{self.upper_qps:.4g} QPS offline throughput; the capacity is the search's ceiling, not the SLO")


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


def find_capacity(measure: Callable[[float], PointResult], *, upper_qps: float, precision: float, max_points: int,
                  bounds_ms: dict[str, float], percentile: float, min_rate: float = 0.0,
                  min_rate_why: str = "") -> SearchResult:
    """Bisect ``[0, upper_qps]`` with ``measure(rate)``, a LoadGen Server point at that rate.

    ``min_rate`` is the lowest rate a point can be VALID at (below it LoadGen cannot issue its
    minimum of queries within the point's maximum duration, ``min_rate_why`` says so): the search
    never measures below it.
    """
    if not upper_qps or upper_qps <= 0:
        raise QuantbenchError(f"the capacity search needs a positive offline throughput, got {upper_qps!r}")
    result = SearchResult(upper_qps=upper_qps)
    lo, hi = 0.0, float(upper_qps)
    while True:
        if len(result.points) >= max_points:
            result.stopped = f"maximum number of points ({max_points})"
            break
        rate = (lo + hi) / 2
        if rate < min_rate:
            if hi > min_rate * 1.01 and not any(p.target_qps <= min_rate * 1.01 for p in result.points):
                rate = min_rate  # once at the lowest rate that can pass, then no lower
            else:
                result.stopped = f"nothing VALID down to {min(hi, upper_qps):.4g} QPS; {min_rate_why}"
                break
        point = measure(rate)
        point.target_qps = rate
        result.points.append(point)
        if point.valid:
            lo, result.capacity = rate, point
        else:
            hi = rate
        if lo > 0 and (hi - lo) / hi <= precision:
            result.stopped = (f"precision reached: VALID at {lo:.4g} QPS, "
                              + (f"INVALID at {hi:.4g} QPS" if hi < upper_qps else
                                 f"the offline throughput {hi:.4g} QPS above it (never INVALID below it)"))
            break
        if lo == 0 and hi <= upper_qps * precision:
            result.stopped = (f"nothing VALID down to {hi:.4g} QPS, {precision:.0%} of the offline throughput: "
                              "a lower rate leaves the queue as empty")
            break
    if result.capacity is None and result.points:
        lowest = min(result.points, key=lambda p: p.target_qps)
        result.message = no_rate_line(bounds_ms, percentile, lowest)
    elif result.capacity is None:
        result.message = (f"no rate meets {slo_text(bounds_ms, percentile)}: the offline throughput, "
                          f"{upper_qps:.4g} QPS, is below {min_rate:.4g} QPS; {min_rate_why}")
    return result
