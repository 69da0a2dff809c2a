"""The knee measured on several independently started systems: the fit, the search, the cell.

A capacity's interval from one system holds the arrivals' noise only. On a shared VM the LLM server's
capacity moved 17 % (sd) from run to run and the intervals of two runs missed each other; with the knee
on several freshly started systems, the interval holds the spread between them (capacity_fit.py).
"""

from __future__ import annotations

import contextlib
import math
from types import SimpleNamespace

import numpy as np
import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.capacity_fit import fit_crossing, fit_replicated_crossing
from quantbench.serving.search import find_capacity
from tests.unit.serving.synthetic import SimulatedQueue

ALLOWED = 0.10
RATES = np.array([4.0, 4.5, 5.0, 5.5, 6.0])
QUERIES = 400


def counts(crossing: float, slope: float = 2.0) -> np.ndarray:
    """Expected over-bound counts (rounded) of a logistic curve through ALLOWED at ``crossing``."""
    target = math.log(ALLOWED / (1 - ALLOWED))
    share = 1 / (1 + np.exp(-(target + slope * (RATES - crossing))))
    return np.round(share * QUERIES)


def replicated(crossings: list[float]):
    rates = np.tile(RATES, len(crossings))
    over = np.concatenate([counts(c) for c in crossings])
    ids = np.repeat(np.arange(len(crossings)), len(RATES))
    return rates, over, np.full(len(rates), QUERIES), ids


def test_systems_that_differ_give_each_its_crossing_and_an_interval_from_their_spread():
    truths = [4.6, 5.0, 5.4]
    rates, over, queries, ids = replicated(truths)
    fit = fit_replicated_crossing(rates, over, queries, ids, ALLOWED)
    assert fit.replicates == pytest.approx(truths, abs=0.05)
    geometric = math.exp(np.mean(np.log(truths)))
    assert fit.estimate == pytest.approx(geometric, abs=0.05)
    assert fit.interval_from == "replicates"
    # Student's t with 2 df on the spread of the three crossings' logs, as a ratio either side.
    half = 4.303 * np.std(np.log(truths), ddof=1) / math.sqrt(3)
    assert (fit.low, fit.high) == pytest.approx((geometric * math.exp(-half), geometric * math.exp(half)), rel=0.03)
    # The pooled fit of the same points knows nothing of the systems and is far narrower.
    pooled = fit_crossing(rates, over, queries, ALLOWED)
    assert (pooled.high - pooled.low) < (fit.high - fit.low) / 2
    assert fit.describe()["interval_from"] == "replicates" and len(fit.describe()["replicate_crossings"]) == 3


def test_systems_that_agree_are_never_surer_than_the_pooled_fit():
    rates, over, queries, ids = replicated([5.0, 5.0, 5.0])
    fit = fit_replicated_crossing(rates, over, queries, ids, ALLOWED)
    pooled = fit_crossing(rates, over, queries, ALLOWED)
    assert fit.interval_from == "pooled fit"
    assert fit.interval == pytest.approx(pooled.interval, rel=1e-6)
    assert fit.se_between < fit.se_within


def test_a_system_with_no_query_over_the_bound_gets_a_finite_crossing_above_the_others():
    rates, over, queries, ids = replicated([5.0, 5.0])
    over = np.concatenate([over[:5], np.zeros(5)])  # the second system held everywhere
    fit = fit_replicated_crossing(rates, over, queries, ids, ALLOWED)
    assert all(math.isfinite(c) for c in fit.replicates)
    assert fit.replicates[1] > RATES.max() > fit.replicates[0]
    assert fit.low < fit.replicates[0] and fit.high > fit.replicates[1]


def test_an_interval_with_a_shallow_knee_stays_above_zero_and_is_wider_above():
    """Bursty counts (the LLM's, 44 queries a point) give a shallow, uncertain slope: the delta method on
    the rate itself reached below zero there (q8_0: [-0.47, 15.0] QPS); on the log scale it cannot."""
    # llama.cpp q8_0 at --parallel 4 in a run of `make serve` on the Xeon VM: TTFT over 500 ms of 44.
    rates = np.array([6.01, 9.02, 10.52, 11.27, 8.77, 11.15, 13.53, 8.77, 11.15, 13.53, 8.77, 11.15, 13.53])
    over = np.array([2, 4, 1, 8, 14, 35, 22, 10, 28, 23, 0, 9, 26])
    ids = np.array([0] * 7 + [1] * 3 + [2] * 3)
    fit = fit_replicated_crossing(rates, over, np.full(13, 44), ids, ALLOWED)
    assert 0 < fit.low < fit.estimate < fit.high
    assert fit.high - fit.estimate > fit.estimate - fit.low
    assert fit.high / fit.estimate == pytest.approx(fit.estimate / fit.low, rel=1e-9)


def test_one_system_is_the_plain_fit():
    rates, over, queries, ids = replicated([5.0])
    assert fit_replicated_crossing(rates, over, queries, ids, ALLOWED) == fit_crossing(rates, over, queries, ALLOWED)


def queue_search(replicates: int, *, restarts: list[int] | None = None, knee_points: int = 3):
    queue = SimulatedQueue(0.005, 15.0, 0.90, min_queries=44)

    def restart(replicate: int) -> None:
        restarts.append(replicate)

    return find_capacity(queue.measure, upper_qps=200.0, precision=0.05, max_points=8, bounds_ms={"latency": 15.0},
                         percentile=0.90, knee_points=knee_points, seed=7, replicates=replicates,
                         restart=restart if restarts is not None else None)


def test_the_search_restarts_the_system_for_each_further_replicate_of_the_knee():
    restarts: list[int] = []
    result = queue_search(3, restarts=restarts)
    assert restarts == [1, 2] and result.replicates == 3
    tags = [p.replicate for p in result.points]
    knee = tags[-9:]
    assert knee == [0, 0, 0, 1, 1, 1, 2, 2, 2] and set(tags[:-9]) == {0}  # the bisection ran on system 0
    # Every replicate measured the same knee rates, each point with its own seeds.
    rates = [p.target_qps for p in result.points[-9:]]
    assert rates[:3] == rates[3:6] == rates[6:]
    assert len({p.seed for p in result.points}) == len(result.points)
    fit = result.fits["latency"]
    assert len(fit.replicates) == 3 and result.capacity_interval is not None
    assert "3 independently started systems" in result.method() and "log scale" in result.method()
    # The se the gate reads is the interval's: Student's t on 2 df, not the fit's 1.96 se.
    low, high = result.capacity_interval
    assert result.capacity_se == pytest.approx((high - low) / (2 * 1.96))


@pytest.mark.parametrize("replicates, restart, message", [
    (0, None, "the capacity search needs at least 1 replicate, got 0"),
    (3, None, "3 replicates need a restart: a replicate is a freshly started system"),
])
def test_replicates_without_a_way_to_restart_are_refused(replicates, restart, message):
    with pytest.raises(QuantbenchError, match=message):
        find_capacity(lambda rate, seed: None, upper_qps=10.0, precision=0.05, max_points=4,
                      bounds_ms={"latency": 1.0}, percentile=0.9, replicates=replicates, restart=restart)


def test_a_serving_cell_starts_a_fresh_system_per_replicate_and_closes_it(tmp_path):
    """ServingRun.server through real LoadGen: each further replicate is a new system, warmed up, that
    serves its own knee points and is closed after them; the first stays the caller's."""
    pytest.importorskip("mlperf_loadgen")
    from quantbench.serving.cell import ServingRun
    from quantbench.serving.logs import PointResult
    from quantbench.suite.serving import ServingSettings
    from tests.unit.serving.synthetic import FixedServiceSystem

    settings = ServingSettings(scenarios=("server",), slo={"latency_p90_ms": 15.0}, min_duration_s=0.3,
                               max_duration_s=5.0, precision=0.2, max_points=4, knee_points=2, replicates=3)
    cell = SimpleNamespace(id="synthetic", task="text-classification", is_generation=False)
    run = ServingRun(cell, SimpleNamespace(serving=settings), log_root=tmp_path, relative_to=tmp_path)
    first, started = FixedServiceSystem(0.005), []

    @contextlib.contextmanager
    def start_again(replicate: int):
        system = FixedServiceSystem(0.005)
        started.append((replicate, system))
        try:
            yield system
        finally:
            system.close()
            system.closed = True

    upper = PointResult("offline", True, [], completed_qps=200.0, latency_ms={})
    try:
        result = run.server(first, 1, upper, tmp_path, start_again=start_again)
    finally:
        first.close()
    if not result.failed:
        pytest.skip(f"no point missed the SLO on this machine ({result.stopped}): no knee, no replicates")
    assert [r for r, _ in started] == [1, 2]
    # The search began after a discarded warm-up point at half the offline rate, with seeds of its own.
    warm = result.warm_up_point
    assert warm.target_qps == pytest.approx(100.0) and warm not in result.points
    assert warm.seed not in {p.seed for p in result.points}
    bisection = [p for p in result.points if p.replicate == 0]
    for replicate, system in started:
        # Two knee points plus the warm-up's two direct batches of one query each.
        mine = [p for p in result.points if p.replicate == replicate]
        assert len(mine) == 2 and system.served == sum(p.query_count for p in mine) + 2
        assert getattr(system, "closed", False)
    assert first.served >= sum(p.query_count for p in bisection) + warm.query_count


def test_a_crossing_outside_the_measured_rates_is_no_fit():
    """One point over the bound below points that held everywhere above it (MiniLM fp32 at max batch 4
    in a run of `make serve`: the search's first point, 7 of 459 over at 64.1 QPS, none over in nine
    later points up to 76.9 QPS). The curve through them crosses far above every measured rate, and
    that extrapolation is not reported as a capacity."""
    rates = np.array([64.1, 48.1, 56.1, 60.1, 50.1, 63.5, 76.9, 50.1, 63.5, 76.9, 50.1, 63.5, 76.9])
    over = np.array([7] + [0] * 12)
    ids = np.array([0] * 7 + [1] * 3 + [2] * 3)
    for fit in (fit_crossing(rates, over, np.full(13, 459), 0.01),
                fit_replicated_crossing(rates, over, np.full(13, 459), ids, 0.01)):
        assert fit.estimate is None and "an extrapolation" in fit.reason and "76.9 QPS" in fit.reason
