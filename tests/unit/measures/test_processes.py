"""Process-level statistics of a timed cell (measures/processes.py)."""

from __future__ import annotations

import math
import random

import pytest

from quantbench.measures.processes import (CONVERGED, PROCESS_CAP, ProcessRounds, figures, log_interval,
                                           should_stop, variance_split)


def process(median_s: float, *, rounds: int = 20, spread: float = 0.01, reference: float | None = 0.005,
            seed: int = 0) -> ProcessRounds:
    rng = random.Random(seed)
    seconds = tuple(median_s * math.exp(rng.gauss(0, spread)) for _ in range(rounds))
    return ProcessRounds(seconds=seconds, reference_s=(reference,) * rounds if reference else None,
                         origin="worker", pid=seed, stop="converged")


def test_log_interval_is_a_t_interval_of_the_mean_log():
    interval = log_interval([1.0, 1.1, 0.9, 1.05], 0.99)
    logs = [math.log(v) for v in (1.0, 1.1, 0.9, 1.05)]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    assert interval.center == pytest.approx(mean)
    assert interval.se == pytest.approx(sd / 2)
    assert interval.half_width == pytest.approx(5.8409 * sd / 2, rel=1e-3)  # t(0.995, 3)
    assert interval.df == 3
    assert log_interval([1.0], 0.99) is None


def test_variance_split_tells_processes_that_differ_from_rounds_that_wander():
    # Processes 10 % apart, rounds tight inside each: almost all the variance is between processes.
    between = variance_split([process(m, spread=0.01, seed=i) for i, m in enumerate((0.010, 0.011, 0.009, 0.0105))])
    assert between["between_share"] > 0.9 and between["between_sd"] > 0.05
    # The same median in every process, rounds spread 10 %: the variance is within.
    within = variance_split([process(0.010, spread=0.1, seed=i) for i in range(4)])
    assert within["between_share"] < 0.2 and within["within_sd"] == pytest.approx(0.1, rel=0.3)
    assert variance_split([process(0.01)]) is None


def test_processes_stop_at_the_target_or_the_cap():
    tight = [process(0.010 * (1 + 0.001 * i), seed=i) for i in range(3)]
    assert should_stop(tight[:2], minimum=3, maximum=6, precision=0.05, confidence=0.99) is None
    assert should_stop(tight, minimum=3, maximum=6, precision=0.05, confidence=0.99) == CONVERGED
    wide = [process(m, seed=i) for i, m in enumerate((0.010, 0.014, 0.008))]
    assert should_stop(wide, minimum=3, maximum=6, precision=0.05, confidence=0.99) is None
    assert should_stop(wide * 2, minimum=3, maximum=6, precision=0.05, confidence=0.99) == PROCESS_CAP
    # Without a precision target the minimum is also the count.
    assert should_stop(wide, minimum=3, maximum=6, precision=None, confidence=0.99) == PROCESS_CAP


def test_each_process_is_its_median_over_its_reference():
    taken = [process(0.010, reference=0.005, seed=1), process(0.012, reference=0.006, seed=2)]
    assert taken[0].normalized == pytest.approx(2.0, rel=0.02)
    record = figures(taken, stop=PROCESS_CAP, confidence=0.99)
    assert [p["pid"] for p in record["processes"]] == [1, 2]
    assert record["processes"][1]["reference_median_ms"] == pytest.approx(6.0)
    low, high = record["process_interval_ms"]
    assert low < 11 < high  # the raw medians' geometric mean, about 10.95 ms
    assert record["process_stop"] == PROCESS_CAP and record["process_variance"]["between_share"] > 0.5
    no_reference = process(0.010, reference=None)
    assert no_reference.normalized == pytest.approx(no_reference.median_s)
