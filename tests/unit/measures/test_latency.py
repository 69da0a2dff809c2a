"""Rounds until the median resolves the gate's threshold, and the statistics computed from raw rounds."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.measures import rounds
from quantbench.measures.latency import summarize


def test_percentiles_and_throughput_come_from_the_raw_rounds():
    samples = [0.010 + 0.001 * i for i in range(11)]  # 10..20 ms
    out = summarize(samples, batch_size=8, seq_len=64)
    assert out["latency_ms"]["p50"] == pytest.approx(15.0)
    assert out["latency_ms"]["p90"] == pytest.approx(np.percentile(np.array(samples) * 1000, 90))
    assert out["latency_ms"]["min"] == pytest.approx(10.0) and out["latency_ms"]["max"] == pytest.approx(20.0)
    assert out["throughput_samples_per_s"] == pytest.approx(8 / 0.015, rel=1e-4)
    assert out["throughput_tokens_per_s"] == pytest.approx(8 * 64 / 0.015, rel=1e-4)
    assert out["rounds"] == 11


def test_the_median_interval_is_the_binomial_order_statistic_interval():
    # 99 %: 7 rounds cannot give one (2 x 0.5^7 = 1.6 % > 1 %); 8 give [min, max].
    assert rounds.median_interval(range(1, 8), 0.99) is None
    assert rounds.median_interval(range(1, 9), 0.99) == (1, 8)
    # n = 20: P(B <= 3) = 0.0013 <= 0.005 < P(B <= 4) = 0.0059, so x(4) .. x(17).
    assert rounds.median_interval(range(1, 21), 0.99) == (4, 17)
    # Coverage checked by simulation: the interval holds the true median about 99 % of the time or more.
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        lo, hi = rounds.median_interval(rng.lognormal(0, 0.3, 25), 0.99)
        hits += lo <= 1.0 <= hi
    assert hits / 2000 >= 0.985


def _simulate(times: list[float], rule: rounds.StopRule) -> rounds.RoundsOutcome:
    """Feed ``times`` as round durations to the stop rule, as run_rounds does."""
    taken: list[float] = []
    for t in times:
        taken.append(t)
        stop = rule.stop(rounds=len(taken), elapsed_s=sum(taken), last_s=t, series=taken)
        if stop:
            return rounds.outcome(rule, stop, len(taken), taken)
    raise AssertionError("the series ran out before the rule stopped")


RULE = rounds.StopRule(min_rounds=10, max_rounds=200, min_time_s=0.5, max_time_s=60.0, precision=0.05)


def test_a_steady_cell_stops_as_soon_as_it_converges():
    rng = np.random.default_rng(1)
    out = _simulate(list(0.05 * (1 + 0.01 * rng.standard_normal(400))), RULE)
    assert out.stop == rounds.CONVERGED and out.rounds in (10, 11)  # min_time 0.5 s: about 10 rounds of 50 ms
    assert out.precision <= 0.05


def test_a_bimodal_cell_takes_more_rounds_until_its_median_is_resolved():
    # The Zen 3 fp32 bs8 cell: 185 ms rounds with a faster 122 ms regime mixed in.
    rng = np.random.default_rng(2)
    bimodal = [float(rng.choice([0.185, 0.122], p=[0.8, 0.2]) * (1 + 0.01 * rng.standard_normal())) for _ in range(400)]
    fixed = bimodal[:10]
    # What the old fixed 10 rounds gave: an interval far wider than ±5 %.
    assert rounds.relative_half_width(fixed, 0.99) > 0.2
    out = _simulate(bimodal, RULE)
    assert out.stop == rounds.CONVERGED and out.rounds > 10
    assert out.precision <= 0.05


def test_caps_stop_a_cell_that_cannot_converge_and_say_which():
    rng = np.random.default_rng(3)
    noisy = list(rng.uniform(0.05, 0.15, 1000))  # no median sharper than ±5 % in a few rounds
    time_capped = _simulate(noisy, rounds.StopRule(10, 1000, 0.5, 2.0, 0.05))
    assert time_capped.stop == rounds.TIME_CAP and sum(noisy[:time_capped.rounds]) <= 2.0
    round_capped = _simulate(noisy, rounds.StopRule(10, 12, 0.5, 60.0, 0.05))
    assert round_capped.stop == rounds.ROUND_CAP and round_capped.rounds == 12
    record = round_capped.record(RULE, on="rounds")
    assert record["rounds_stop"] == "round cap" and record["rounds_target"]["precision"] == 0.05
    assert record["rounds_interval_ms"][0] < record["rounds_interval_ms"][1]
    # min_rounds is a floor even past the time cap; precision None keeps the old fill-min_time rule.
    assert _simulate([1.0] * 20, rounds.StopRule(3, 100, 0.5, 1.5, 0.05)).rounds == 3
    assert _simulate(noisy, rounds.StopRule(10, 1000, 0.5, 60.0, None)).stop == rounds.CONVERGED


class _FakeFixture:
    """The pieces of pytest-benchmark's fixture run_rounds uses (their real names are pinned below)."""

    def __init__(self, durations):
        self._mode, self.has_error, self.recorded, self._durations = None, False, [], iter(durations)

    def _make_stats(self, iterations):
        fixture = self

        class Stats:
            def update(self, duration):
                fixture.recorded.append(duration)
        return Stats()

    def _make_runner(self, target, args, kwargs):
        return lambda loops: (next(self._durations), target())


def test_run_rounds_times_into_the_fixtures_stats_until_the_rule_stops():
    fixture = _FakeFixture([0.01] * 30)
    calls = []
    out = rounds.run_rounds(fixture, lambda: calls.append(1), rounds.StopRule(5, 100, 0.0, 10.0, 0.05),
                            setup=lambda: calls.append(0))
    assert out.rounds == 8 and fixture.recorded == [0.01] * 8  # 8 rounds: the first 99 % interval
    assert calls == [0, 1] * 8 and fixture._mode == "benchmark.pedantic(...)"
    with pytest.raises(RuntimeError, match="already used"):
        rounds.run_rounds(fixture, lambda: None, RULE)


def test_pytest_benchmark_still_has_the_private_methods_run_rounds_uses():
    from pytest_benchmark.fixture import BenchmarkFixture

    assert callable(BenchmarkFixture._make_stats) and callable(BenchmarkFixture._make_runner)


def test_the_run_summary_says_how_the_rounds_stopped_and_what_a_capped_median_is_worth():
    from quantbench.plugin.summary import render_summary

    target = {"precision": 0.05, "confidence": 0.99, "on": "rounds"}
    def record(stop, width, test="test_latency"):
        return {"test": test, "extra_info": {"rounds_stop": stop, "rounds_precision": width, "rounds_target": target}}
    from quantbench.plugin.summary import render_rounds

    lines = render_rounds([record("converged", 0.03), record("converged", 0.04), record("time cap", 0.12),
                            record("round cap", 0.07)])
    assert lines[-1] == ("rounds: 2 of 4 timed cells converged to ±5% of their median at 99%; 1 stopped at the "
                         "time cap; 1 stopped at the round cap (their medians to ±12% at worst: raise "
                         "measure.max_time_s to resolve them)")
    assert render_summary([]) == []
