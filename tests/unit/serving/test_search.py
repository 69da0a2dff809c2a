"""The capacity search's logic on a scripted system: bisection, its stop rules, the one-line verdict."""

from __future__ import annotations

import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.logs import PointResult
from quantbench.serving.search import find_capacity, no_rate_line, slo_text


def fake_point(rate: float, *, capacity: float, base_ms: float = 5.0, reasons=None) -> PointResult:
    """A system whose p99 is base_ms below ``capacity`` and grows past the bound above it."""
    valid = rate <= capacity
    p99 = base_ms if valid else base_ms * 20 * (1 + rate / max(capacity, 1.0))
    return PointResult("server", valid, reasons if reasons is not None else
                       ([] if valid else ["the latency bound was not met at the percentile"]),
                       completed_qps=rate, latency_ms={"p50": base_ms / 2, "p99": p99})


def search(capacity: float, upper: float = 100.0, **kw):
    rates = []

    def measure(rate):
        rates.append(rate)
        return fake_point(rate, capacity=capacity)

    settings = dict(precision=0.05, max_points=8, bounds_ms={"latency": 50.0}, percentile=0.99)
    settings.update(kw)
    return find_capacity(measure, upper_qps=upper, **settings), rates


def test_bisection_brackets_the_capacity_within_the_precision():
    result, rates = search(capacity=63.0)
    assert rates[0] == 50.0  # the first point is half the offline bound
    assert result.capacity_qps <= 63.0
    valid_hi = min(p.target_qps for p in result.points if not p.valid)
    assert (valid_hi - result.capacity_qps) / valid_hi <= 0.05
    assert result.stopped.startswith("precision reached") and result.message is None
    assert len(result.points) == len(rates) <= 8


def test_every_point_is_recorded_with_its_rate_and_the_search_is_bounded():
    result, rates = search(capacity=63.0, precision=0.001, max_points=4)
    assert [p.target_qps for p in result.points] == rates and len(rates) == 4
    assert result.stopped == "maximum number of points (4)"
    assert result.capacity_qps == max(p.target_qps for p in result.points if p.valid)


def test_a_system_valid_up_to_the_offline_bound_says_so():
    result, _ = search(capacity=1000.0)
    assert result.capacity_qps >= 95.0
    assert "never INVALID below it" in result.stopped
    # The capacity is the search's ceiling (15/16 of the bound after 4 points), not a rate the SLO stopped.
    assert result.slo_binding is False
    assert result.bound_by().startswith("SLO not binding: every point was VALID, up to 96.88 QPS of the 100 QPS")


def test_an_slo_that_stopped_the_search_is_binding():
    result, _ = search(capacity=63.0)
    assert result.slo_binding is True and result.bound_by().startswith("the SLO")
    none, _ = search(capacity=0.5, max_points=3)
    assert none.capacity_qps is None and none.slo_binding is None and none.bound_by() is None


def test_no_rate_meets_the_slo_gives_one_line_from_the_lowest_rate():
    result, rates = search(capacity=0.0)
    assert result.capacity_qps is None
    assert min(rates) <= 100 * 0.05  # it went down to precision x the offline throughput, then stopped
    lowest = min(result.points, key=lambda p: p.target_qps)
    assert result.message == (f"no rate meets p99 ≤ 50 ms: at the lowest rate, {lowest.target_qps:.4g} QPS, "
                              f"p99 was {lowest.latency_ms['p99']:.4g} ms")
    assert "\n" not in result.message and "nothing VALID down to" in result.stopped


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


def test_a_search_without_an_offline_bound_is_an_error():
    with pytest.raises(QuantbenchError, match="positive offline throughput"):
        find_capacity(lambda r: None, upper_qps=0, precision=0.05, max_points=4, bounds_ms={"latency": 1.0},
                      percentile=0.99)


def test_the_search_never_measures_below_the_rate_a_point_can_pass_at():
    result, rates = search(capacity=0.0, min_rate=20.0, min_rate_why="below 20 QPS LoadGen cannot issue its queries")
    assert rates == [50.0, 25.0, 20.0]  # halving, then once at the floor, then no lower
    assert result.stopped == "nothing VALID down to 20 QPS; below 20 QPS LoadGen cannot issue its queries"
    assert result.message.startswith("no rate meets p99 ≤ 50 ms: at the lowest rate, 20 QPS")
    result, rates = search(capacity=0.0, upper=10.0, min_rate=20.0, min_rate_why="why")
    assert rates == [] and result.message == ("no rate meets p99 ≤ 50 ms: the offline throughput, 10 QPS, is below "
                                              "20 QPS; why")
