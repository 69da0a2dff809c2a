"""Slow creep (quantbench.history.trend): Mann-Kendall with the Theil-Sen slope, on the segment since
the last step, across change points that a bend explains better than steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantbench.history.changepoints import REGRESSION, HistoryValueError, classify, detect_change_points
from quantbench.history.trend import TREND_ALPHA, current_trend, min_points, trend, trend_start

SIGMA = 0.034 / math.sqrt(3)  # as in test_changepoints: three runs a commit on the study's VM


def creep(seed: int, *, flat: int = 16, rising: int = 20, rate: float = 0.005, sigma: float = SIGMA) -> np.ndarray:
    rng = np.random.default_rng(seed)
    effect = np.concatenate([np.zeros(flat), math.log1p(rate) * np.arange(1, rising + 1)])
    return 100 * np.exp(effect + sigma * rng.standard_t(4, flat + rising) / math.sqrt(2))


def test_a_clean_creep_has_its_slope():
    values = 100 * 1.005 ** np.arange(20)
    result = trend(values)
    assert result.significant and result.tau == pytest.approx(1.0)
    assert result.p_value < 1e-6
    assert result.rel_slope == pytest.approx(0.005, rel=0.05)
    assert result.rel_slope_interval[0] <= result.rel_slope <= result.rel_slope_interval[1]
    assert (result.start, result.stop) == (0, 20)


def test_a_creep_is_reported_across_the_change_points_it_caused():
    values = creep(50_000)
    cps = detect_change_points(values)
    assert cps, "a 10 % rise in 20 commits: E-divisive cuts it somewhere"
    result = current_trend(values, cps)
    assert result is not None and result.significant
    assert abs(result.start - 16) <= 3  # where the bend began, not the last cut
    assert result.rel_slope_interval[0] <= 0.005 <= result.rel_slope_interval[1]
    assert classify(result.slope, "latency_p50_ms") == REGRESSION


def test_creeps_are_reported_on_fresh_seeds():
    reported = 0
    for seed in range(50_100, 50_120):
        values = creep(seed)
        result = current_trend(values, detect_change_points(values))
        reported += bool(result and result.significant and result.slope > 0)
    assert reported >= 16  # the study: 92 % of 100


def test_flat_histories_rarely_trend():
    flagged = 0
    for seed in range(50_200, 50_240):
        values = creep(seed, rate=0.0)
        result = current_trend(values, detect_change_points(values))
        flagged += bool(result and result.significant)
    assert flagged <= 3  # at TREND_ALPHA = 0.02: 0.8 expected of 40, more than 3 with probability 0.8 %


def test_an_old_step_is_not_a_trend():
    rng = np.random.default_rng(3)
    values = 100 * np.exp(np.where(np.arange(36) >= 14, math.log1p(0.08), 0.0) + 0.004 * rng.standard_normal(36))
    cps = detect_change_points(values)
    assert [cp.index for cp in cps] == [14]
    assert trend_start(values, cps) == 14
    result = current_trend(values, cps)
    assert result is not None and result.start == 14 and not result.significant


def test_min_points_follows_the_exact_test():
    # All n values in order give p = 2 / n!: 2/24 > 0.05, 2/120 < 0.02, 2/720 < 0.01.
    assert [min_points(a) for a in (0.1, 0.05, 0.02, 0.01)] == [4, 5, 5, 6]


def test_too_short_a_segment():
    message = r"^a trend needs at least 5 values from position 2 \(alpha 0.02\): got 3$"
    with pytest.raises(HistoryValueError, match=message):
        trend([1.0, 2.0, 3.0, 4.0, 5.0], start=2)
    values = np.concatenate([np.full(20, 100.0), np.full(4, 120.0)])
    values[:20] += np.linspace(-0.1, 0.1, 20)

    class Step:  # a change point 4 commits before the head: too few after it to test
        index = 20

    assert current_trend(values, [Step()]) is None
    assert TREND_ALPHA == 0.02


def test_a_constant_segment_has_no_trend():
    result = trend([7.0] * 10)
    assert not result.significant and result.slope == 0.0 and result.p_value == 1.0


def test_nan_is_refused_in_one_line():
    with pytest.raises(HistoryValueError, match=r"^history values must be finite: position 1 is nan$"):
        trend([1.0, math.nan, 3.0, 4.0, 5.0, 6.0])
