"""Change points in a metric's history (quantbench.history.changepoints): E-divisive means with a
permutation test, checked on its definition, on planted steps, and on seeded synthetic histories in
the noise of docs/history.md (Student t, 4 df; sd 2.0 %: three runs a commit on the study's VM)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from quantbench.errors import UnknownNameError
from quantbench.history.changepoints import (
    ALPHA,
    IMPROVEMENT,
    MIN_SIZE,
    REGRESSION,
    UNCHANGED,
    HistoryValueError,
    _best_split,
    classify,
    detect_change_points,
    per_commit,
)

SIGMA = 0.034 / math.sqrt(3)  # docs/history.md: the study's 3.4 % per run, three runs a commit


def history(seed: int, *, step: float = 0.0, at: int | None = None, n: int = 36, sigma: float = SIGMA) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = sigma * rng.standard_t(4, n) / math.sqrt(2)  # t(4) has sd sqrt(2)
    effect = np.zeros(n)
    if at is not None:
        effect[at:] = math.log1p(step)
    return 100 * np.exp(effect + noise)


def brute_force_q(z: np.ndarray, min_size: int) -> tuple[int, float]:
    """Matteson and James' q-hat, maximized over (tau, kappa) term by term."""
    best = (0, -math.inf)
    for tau in range(min_size, len(z) - min_size + 1):
        for kappa in range(tau + min_size, len(z) + 1):
            x, y = z[:tau], z[tau:kappa]
            n, m = len(x), len(y)
            cross = sum(abs(a - b) for a in x for b in y)
            within_x = sum(abs(a - b) for a, b in itertools.combinations(x, 2))
            within_y = sum(abs(a - b) for a, b in itertools.combinations(y, 2))
            energy = 2 * cross / (n * m) - within_x / math.comb(n, 2) - within_y / math.comb(m, 2)
            q = n * m / (n + m) * energy
            if q > best[1]:
                best = (tau, q)
    return best


@pytest.mark.parametrize("min_size", [2, 3, 5])
def test_the_statistic_is_the_papers(min_size):
    rng = np.random.default_rng(7)
    for _ in range(3):
        z = rng.normal(size=15)
        z[8:] += 1.0
        tau, q = _best_split(np.abs(z[:, None] - z[None, :]), min_size)
        want_tau, want_q = brute_force_q(z, min_size)
        assert tau == want_tau
        assert q == pytest.approx(want_q, rel=1e-9)


def test_a_known_step_is_found_at_its_index():
    values = history(1, step=0.10, at=15, n=30, sigma=0.005)
    (cp,) = detect_change_points(values)
    assert cp.index == 15
    assert (cp.n_before, cp.n_after) == (15, 15)
    assert cp.mean_before == pytest.approx(values[:15].mean())
    assert cp.mean_after == pytest.approx(values[15:].mean())
    assert cp.rel_step == pytest.approx(0.10, abs=0.01)
    assert cp.rel_step_interval[0] < cp.rel_step < cp.rel_step_interval[1]
    assert cp.rel_step_interval[0] < 0.10 < cp.rel_step_interval[1]
    assert cp.p_value <= ALPHA and cp.q_hat > 0


def test_two_steps_and_their_neighbouring_means():
    values = np.concatenate([history(2, n=12, sigma=0.005), 1.1 * history(3, n=12, sigma=0.005),
                             history(4, n=12, sigma=0.005)])
    cps = detect_change_points(values)
    assert [cp.index for cp in cps] == [12, 24]
    # Means are over the neighbouring segments of the final segmentation, not the whole history.
    assert cps[0].mean_after == pytest.approx(values[12:24].mean())
    assert cps[1].mean_before == pytest.approx(values[12:24].mean())
    assert cps[0].rel_step > 0 > cps[1].rel_step


def test_a_planted_5_percent_step_is_found_at_its_commit():
    """30 fresh seeds (not the study's): a 5 % step up or down at commit 10-26 of 36."""
    found = 0
    for seed in range(40_000, 40_030):
        rng = np.random.default_rng(seed + 1)
        at, sign = int(rng.integers(10, 27)), rng.choice((-1, 1))
        cps = detect_change_points(history(seed, step=sign * 0.05, at=at))
        found += any(abs(cp.index - at) <= 1 and np.sign(cp.rel_step) == sign for cp in cps)
    assert found >= 26  # the study: 94 % on 200 histories


def test_no_change_histories_rarely_show_one():
    flagged = sum(bool(detect_change_points(history(seed))) for seed in range(41_000, 41_060))
    assert flagged <= 3  # at ALPHA = 0.02: 1.2 expected of 60, more than 3 with probability 3 %


def test_the_search_is_deterministic():
    values = history(5, step=0.05, at=18)
    assert detect_change_points(values) == detect_change_points(values)


@pytest.mark.parametrize(("change", "metric", "verdict"), [
    (+0.05, "latency_p50_ms", REGRESSION),
    (-0.05, "latency_p50_ms", IMPROVEMENT),
    (-3.0, "throughput_samples_per_s", REGRESSION),
    (+3.0, "throughput_samples_per_s", IMPROVEMENT),
    (-0.02, "accuracy", REGRESSION),
    (+0.01, "peak_rss_mb", REGRESSION),
    (0.0, "latency_p50_ms", UNCHANGED),
])
def test_direction_comes_from_the_metric(change, metric, verdict):
    assert classify(change, metric) == verdict


def test_a_step_is_classified_by_its_metric():
    (cp,) = detect_change_points(history(6, step=-0.10, at=18, sigma=0.005))
    assert classify(cp.step, "latency_p50_ms") == IMPROVEMENT
    assert classify(cp.step, "throughput_samples_per_s") == REGRESSION


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown metric 'latency_p51_ms'; known: .*latency_p50_ms"):
        classify(1.0, "latency_p51_ms")


def test_too_few_points_have_no_change_point_yet():
    values = [100.0] * MIN_SIZE + [150.0] * (MIN_SIZE - 1)
    assert detect_change_points(values) == []
    assert detect_change_points([]) == []


def test_a_constant_series_has_none():
    assert detect_change_points([42.0] * 30) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_are_refused_in_one_line(bad):
    values = list(history(8))
    values[3] = bad
    with pytest.raises(HistoryValueError, match=r"^history values must be finite: position 3 is (nan|inf)$"):
        detect_change_points(values)


def test_std_errors_widen_the_interval_only():
    values = history(9, step=0.05, at=18, sigma=0.005)
    plain = detect_change_points(values)
    wide = detect_change_points(values, std_errors=np.full(len(values), 5.0))
    assert [cp.index for cp in wide] == [cp.index for cp in plain]
    (a,), (b,) = plain, wide
    assert b.rel_step == a.rel_step
    assert b.rel_step_interval[1] - b.rel_step_interval[0] > 2 * (a.rel_step_interval[1] - a.rel_step_interval[0])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"std_errors": [1.0, 2.0]}, "std_errors must have one entry per value: 2 for 12 values"),
    ({"std_errors": [1.0] * 11 + [-1.0]}, "std_errors must be finite and >= 0: position 11 is -1.0"),
    ({"alpha": 0.0}, "alpha must be in (0, 1), got 0.0"),
    ({"min_size": 1}, "min_size must be an integer >= 2, got 1"),
    ({"permutations": 0}, "permutations must be an integer >= 1, got 0"),
    ({"power": 2.0}, "power must be in (0, 2), got 2.0"),
])
def test_bad_arguments_are_one_line(kwargs, message):
    with pytest.raises(HistoryValueError) as info:
        detect_change_points([100.0] * 12, **kwargs)
    assert str(info.value) == message


def test_per_commit_means_and_errors():
    commits, means, errors = per_commit([100.0, 104.0, 102.0, 90.0, 110.0], ["a", "a", "a", "b", "c"])
    assert commits == ["a", "b", "c"]
    assert means.tolist() == [102.0, 90.0, 110.0]
    assert errors[0] == pytest.approx(2.0 / math.sqrt(3))
    assert errors[1:].tolist() == [0.0, 0.0]
    with pytest.raises(HistoryValueError, match="commits must have one entry per value: 1 for 2 values"):
        per_commit([1.0, 2.0], ["a"])
