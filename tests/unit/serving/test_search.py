"""The capacity search's logic on a scripted system: bisection, its stop rules, the one-line verdict."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.early_stopping import passes
from quantbench.serving.logs import PointResult
from quantbench.serving.capacity_fit import Crossing
from quantbench.serving.search import SearchResult, find_capacity, meets, no_rate_line, over_counts, slo_text


QUERIES = 1000


def fake_point(rate: float, *, capacity: float, base_ms: float = 5.0, reasons=None) -> PointResult:
    """A system whose share of queries over the bound is 1 % exactly at ``capacity`` and grows tenfold
    every 20 % of it above (log-linear in the rate, as the fit assumes); LoadGen's verdict: early stopping."""
    share = 0.01 * 10 ** ((rate - capacity) / (0.2 * max(capacity, 1.0))) if capacity > 0 else 0.5
    over = min(QUERIES, int(round(share * QUERIES)))
    valid = passes(QUERIES, over, 0.99)
    p99 = base_ms if over <= 10 else base_ms * 20 * (1 + rate / max(capacity, 1.0))
    return PointResult("server", valid, reasons if reasons is not None else
                       ([] if valid else ["the latency bound was not met at the percentile"]),
                       completed_qps=rate, latency_ms={"p50": base_ms / 2, "p99": p99}, query_count=QUERIES,
                       overlatency_queries=over, percentile=0.99)


def search(capacity: float, upper: float = 100.0, **kw):
    rates, seeds = [], []

    def measure(rate, seed):
        rates.append(rate)
        seeds.append(seed)
        return fake_point(rate, capacity=capacity)

    settings = dict(precision=0.05, max_points=8, bounds_ms={"latency": 50.0}, percentile=0.99)
    settings.update(kw)
    result = find_capacity(measure, upper_qps=upper, **settings)
    assert seeds == list(range(kw.get("seed", 0), kw.get("seed", 0) + len(rates)))  # a seed of its own per point
    return result, rates


def test_bisection_brackets_the_capacity_then_the_knee_points_spread_over_it():
    result, rates = search(capacity=63.0, knee_points=4)
    assert rates[0] == 50.0  # the first point is half the offline bound
    bisection, knee = result.points[:-4], result.points[-4:]
    met = max(p.target_qps for p in bisection if p.met)
    missed = min(p.target_qps for p in bisection if not p.met)
    assert met <= 63.0 <= missed and (missed - met) / missed <= 0.05
    assert result.stopped.startswith("precision reached") and result.message is None
    assert [p.target_qps for p in knee] == pytest.approx(list(np.linspace(met / 1.2, missed * 1.2, 4)))
    assert [p.seed for p in result.points] == list(range(len(rates)))


def test_the_capacity_is_the_fitted_crossing_with_an_interval():
    result, _ = search(capacity=63.0, knee_points=4, seed=7)
    # The counts are the exact share rounded: the fit finds the crossing, and its interval holds it.
    assert result.capacity_qps == pytest.approx(63.0, rel=0.02)
    low, high = result.capacity_interval
    assert low < 63.0 < high and high - low < 0.2 * 63.0
    assert result.fits["latency"].points >= 5 and result.capacity_se > 0
    assert result.method().startswith(f"{result.fits['latency'].points} points' latency over-bound counts fitted")
    assert result.slo_binding is True and result.bound_by().startswith("the SLO")
    # LoadGen's verdict (the p99's 99 % upper bound, early stopping) is stricter: its highest VALID rate is lower.
    assert 0 < result.loadgen_valid_qps < result.capacity_qps


def test_a_point_meets_the_slo_on_its_share_over_the_bound_not_on_loadgen_s_verdict():
    point = PointResult("server", False, ["early stopping was not satisfied"], 60.0, {"p99": 49.0},
                        query_count=1000, overlatency_queries=8, percentile=0.99)
    assert meets(point, {"latency": 50.0}, 0.99)  # 0.8 % over: p99 within the bound, LoadGen INVALID
    point.overlatency_queries = 11
    assert not meets(point, {"latency": 50.0}, 0.99)
    # Generation: each figure on the system's own count, and both must hold.
    gen = PointResult("server", True, [], 1.0, {}, client={"completed": 50, "over_bound": {"ttft": 5, "tpot": 6}})
    assert over_counts(gen, {"ttft": 500.0, "tpot": 50.0}) == {"ttft": (5, 50), "tpot": (6, 50)}
    assert not meets(gen, {"ttft": 500.0, "tpot": 50.0}, 0.9)
    gen.client["over_bound"]["tpot"] = 5
    assert meets(gen, {"ttft": 500.0, "tpot": 50.0}, 0.9)
    assert not meets(gen, {"ttft": 500.0, "tpot": 50.0, "latency": 9.0}, 0.9)  # a figure nobody counted


def test_every_point_is_recorded_with_its_rate_and_the_search_is_bounded():
    result, rates = search(capacity=63.0, precision=0.001, max_points=4, knee_points=0)
    assert [p.target_qps for p in result.points] == rates and len(rates) == 4
    assert result.stopped == "maximum number of points (4)"
    assert result.capacity_interval is not None  # three points near the knee make a fit
    result, rates = search(capacity=63.0, max_points=2, knee_points=0)
    assert rates == [50.0, 75.0]
    # Two points are too few for the fit: the highest rate that met, and it says so.
    assert result.capacity_interval is None
    assert result.capacity_qps == max(p.target_qps for p in result.points if p.met)
    assert "no fit" in result.method()


def test_a_system_meeting_the_slo_up_to_the_offline_bound_is_probed_above_it():
    result, rates = search(capacity=160.0, knee_points=4)
    assert 100.0 in rates and 150.0 in rates  # the offline throughput itself, then 1.5x
    low, high = result.capacity_interval  # a bracket of 150 to 200 QPS when the 8 points ran out
    assert result.slo_binding is True and low < 160.0 < high
    result, _ = search(capacity=160.0, knee_points=4, max_points=10)
    assert result.capacity_qps == pytest.approx(160.0, rel=0.05)
    never, rates = search(capacity=1000.0, max_points=12)
    assert max(rates) == 200.0  # 2x the offline throughput, no further
    assert never.slo_binding is False and never.capacity_interval is None
    assert never.stopped.endswith("SLO not binding")
    assert never.bound_by().startswith("SLO not binding: every point met it, up to 200 QPS against the 100 QPS")


def test_no_rate_meets_the_slo_gives_one_line_from_the_lowest_rate():
    result, rates = search(capacity=0.0)
    assert result.capacity_qps is None and result.slo_binding is None and result.bound_by() is None
    assert min(rates) <= 100 * 0.05  # it went down to precision x the offline throughput, then stopped
    lowest = min(result.points, key=lambda p: p.target_qps)
    assert result.message == (f"no rate meets p99 ≤ 50 ms: at the lowest rate, {lowest.target_qps:.4g} QPS, "
                              f"p99 was {lowest.latency_ms['p99']:.4g} ms")
    assert "\n" not in result.message and "nothing met the SLO down to" in result.stopped


def test_an_invalid_point_within_the_bound_names_loadgen_s_reason():
    point = fake_point(2.0, capacity=0.0, reasons=["the minimum query count was not reached"])
    point.latency_ms["p99"] = 12.0
    point.target_qps = 2.0
    line = no_rate_line({"latency": 50.0}, 0.99, point)
    assert line.endswith("p99 was 12 ms (LoadGen: the minimum query count was not reached)")


def test_generation_slos_name_both_figures():
    assert slo_text({"ttft": 500.0, "tpot": 50.0}, 0.9) == "TTFT p90 ≤ 500 ms and TPOT p90 ≤ 50 ms"
    point = PointResult("server", False, [], 1.0, {}, ttft_ms={"p90": 900.0}, tpot_ms={"p90": 40.0}, target_qps=0.5)
    assert no_rate_line({"ttft": 500.0, "tpot": 50.0}, 0.9, point) == (
        "no rate meets TTFT p90 ≤ 500 ms and TPOT p90 ≤ 50 ms: at the lowest rate, 0.5 QPS, TTFT p90 was 900 ms and "
        "TPOT p90 was 40 ms")


def generation_point(rate: float, *, ttft_capacity: float, tpot_over: int = 0, queries: int = 200) -> PointResult:
    """An LLM server point: TTFT over its bound as fake_point's latency (10 % at ``ttft_capacity``, tenfold
    per 20 % above), TPOT over its bound on ``tpot_over`` queries whatever the rate."""
    share = min(1.0, 0.1 * 10 ** ((rate - ttft_capacity) / (0.2 * ttft_capacity)))
    return PointResult("server", True, [], rate, {}, target_qps=rate,
                       client={"completed": queries, "over_bound": {"ttft": int(round(share * queries)),
                                                                    "tpot": tpot_over}})


def generation_search(**kw):
    return find_capacity(lambda rate, seed: generation_point(rate, **kw), upper_qps=20.0, precision=0.05,
                         max_points=8, knee_points=4, bounds_ms={"ttft": 500.0, "tpot": 100.0}, percentile=0.9)


@pytest.mark.parametrize("tpot_over", [0, 2])  # none over its bound, or 1 % of queries (within the 10 %)
def test_a_bound_held_at_every_rate_does_not_erase_the_other_s_fit(tpot_over):
    # TTFT binds at 9 QPS; TPOT held everywhere: the capacity is TTFT's fitted crossing with its interval,
    # and the record says TPOT did not bind, up to which rate.
    result = generation_search(ttft_capacity=9.0, tpot_over=tpot_over)
    assert result.fits["tpot"].estimate is None and result.fits["tpot"].held_everywhere
    assert result.capacity_qps == pytest.approx(9.0, rel=0.03) and result.capacity_interval is not None
    assert result.not_binding() == ["tpot"]
    assert result.fit_window_qps > result.capacity_qps
    assert "TPOT not binding (within its allowance at every point up to" in result.method()


def test_a_figure_without_a_fit_that_may_bind_leaves_the_capacity_to_the_bisection():
    ttft = Crossing(9.0, low=8.0, high=10.0, se=0.5, points=8, dispersion=1.0, slope=1.0)
    capacity = PointResult("server", True, [], 8.5, {}, target_qps=8.5)

    def result(tpot: Crossing, window: float) -> SearchResult:
        return SearchResult(upper_qps=20.0, capacity=capacity, failed=True, allowed_share=0.1,
                            fits={"ttft": ttft, "tpot": tpot}, fit_window_qps=window)

    held = Crossing(None, points=8, reason="within", held_everywhere=True)
    assert result(held, 12.0).capacity_interval == (8.0, 10.0)
    # Held only up to 8.8 QPS, below TTFT's crossing: TPOT may cross first above that, so no fit binds.
    assert result(held, 8.8).binding_fit is None and result(held, 8.8).capacity_qps == 8.5
    assert result(held, 8.8).method() == (
        "the highest rate that met the SLO (bisection; no fit: ttft: crosses at 9 QPS, more than the search's "
        "precision (0%) above 8.8 QPS, the highest rate where the other figures were measured; tpot: within), "
        "no interval")
    # Above the held rates by less than the search's precision: the capacity lies between the two, as close
    # as the suite asked the bisection to bracket it, and TTFT's fit stands.
    close = result(held, 8.8)
    close.precision = 0.05
    assert close.capacity_interval == (8.0, 10.0)
    close.precision = 0.02
    assert close.binding_fit is None
    # A TPOT share that does not grow with the rate (or is over everywhere): it may bind anywhere.
    flat = Crossing(None, points=8, reason="the share over the bound does not grow with the rate near the knee")
    assert result(flat, 12.0).capacity_interval is None and result(flat, 12.0).capacity_qps == 8.5
    assert "no fit: tpot: the share over the bound does not grow" in result(flat, 12.0).method()


def test_a_search_without_an_offline_bound_is_an_error():
    with pytest.raises(QuantbenchError, match="positive offline throughput"):
        find_capacity(lambda r, s: None, upper_qps=0, precision=0.05, max_points=4, bounds_ms={"latency": 1.0},
                      percentile=0.99)


def test_the_search_never_measures_below_the_rate_a_point_can_pass_at():
    result, rates = search(capacity=0.0, min_rate=20.0, min_rate_why="below 20 QPS LoadGen cannot issue its queries")
    assert rates == [50.0, 25.0, 20.0]  # halving, then once at the floor, then no lower
    assert result.stopped == "nothing met the SLO down to 20 QPS; below 20 QPS LoadGen cannot issue its queries"
    assert result.message.startswith("no rate meets p99 ≤ 50 ms: at the lowest rate, 20 QPS")
    result, rates = search(capacity=0.0, upper=10.0, min_rate=20.0, min_rate_why="why")
    assert rates == [] and result.message == ("no rate meets p99 ≤ 50 ms: the offline throughput, 10 QPS, is below "
                                              "20 QPS; why")
