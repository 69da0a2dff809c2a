"""Rounds until the median is known well enough for the gate to judge it.

A fixed number of rounds can stop with a median the gate cannot use: on an AVX2 Zen 3, fp32 bs8
stopped at 10 rounds, 8 near 185 ms and 2 near 122 ms, and a planted 50 % slowdown's interval
then ran from +2.6 % to +119 %, so the gate could not call it. Here a cell keeps taking rounds
until the distribution-free interval of its median is narrower than a target (by default ± half
the gate's default 10 % timing threshold, at 99 %), or until a cap:

* ``converged``: the interval is within ± ``precision`` of the median (after ``min_rounds`` and
  ``min_time_s``);
* ``time cap``: one more round would pass ``max_time_s``;
* ``round cap``: ``max_rounds`` were taken.

The interval is the order-statistic (binomial) interval of the median, the same assumption-free
reading of the rounds the gate's Mann-Whitney test makes; it needs 8 rounds at 99 %. For a
generation cell the series is every decode step's time (what the gate tests decode on).

pytest-benchmark's ``pedantic`` runs a fixed number of rounds and can be called once, so the loop
is this module's own: it times each round with the fixture's own runner (its timer, its gc
handling) and adds it to the fixture's own stats, so the JSON is pytest-benchmark's as before.
That uses two private methods of pytest-benchmark 5.3 (pinned below 5.4); a test pins them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from scipy import stats

CONVERGED, TIME_CAP, ROUND_CAP = "converged", "time cap", "round cap"


def median_interval(samples: Sequence[float], confidence: float) -> tuple[float, float] | None:
    """The order-statistic interval of the median at ``confidence``; None with too few samples.

    [x(j), x(n-j+1)] covers the median with probability 1 - 2 P(B <= j-1), B ~ Binomial(n, 1/2):
    ``j`` is the largest index that keeps that at ``confidence`` or above.
    """
    values = sorted(float(s) for s in samples)
    n = len(values)
    tail = (1 - confidence) / 2
    if n < 2 or stats.binom.cdf(0, n, 0.5) > tail:
        return None
    j = 1
    while j < n // 2 and stats.binom.cdf(j, n, 0.5) <= tail:
        j += 1
    return values[j - 1], values[n - j]


def relative_half_width(samples: Sequence[float], confidence: float) -> float | None:
    """The interval's larger distance from the median, as a share of the median (None: no interval)."""
    interval = median_interval(samples, confidence)
    if interval is None:
        return None
    values = sorted(samples)
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    if median <= 0:
        return math.inf
    return max(median - interval[0], interval[1] - median) / median


@dataclass(frozen=True)
class StopRule:
    """When a cell's rounds stop (suite ``measure``: min/max rounds and time, precision, confidence)."""

    min_rounds: int
    max_rounds: int
    min_time_s: float
    max_time_s: float
    precision: float | None  # None or 0: no convergence test (rounds fill min_time_s, as before)
    confidence: float = 0.99

    @classmethod
    def for_rounds(cls, settings) -> "StopRule":
        """A timed cell's rounds under the suite's ``measure`` settings."""
        return cls(min_rounds=settings.min_rounds, max_rounds=settings.max_rounds, min_time_s=settings.min_time_s,
                   max_time_s=settings.max_time_s, precision=settings.precision, confidence=settings.confidence)

    @classmethod
    def for_prefill(cls, settings) -> "StopRule":
        """A generation cell's prefill-only rounds: at least ``prefill_rounds``, then until the time to
        first token converges, within ``max_prefill_rounds`` and half of ``max_time_s``."""
        return cls(min_rounds=settings.prefill_rounds, max_rounds=max(settings.prefill_rounds,
                                                                       settings.max_prefill_rounds),
                   min_time_s=0.0, max_time_s=settings.max_time_s / 2, precision=settings.precision,
                   confidence=settings.confidence)

    def converged(self, series: Sequence[float]) -> bool:
        if not self.precision:
            return True
        width = relative_half_width(series, self.confidence)
        return width is not None and width <= self.precision

    def stop(self, *, rounds: int, elapsed_s: float, last_s: float, series: Sequence[float]) -> str | None:
        if rounds >= self.max_rounds:
            return ROUND_CAP
        if rounds < self.min_rounds:
            return None
        if elapsed_s >= self.min_time_s and self.converged(series):
            return CONVERGED
        if elapsed_s + last_s > self.max_time_s:
            return TIME_CAP
        return None


@dataclass(frozen=True)
class RoundsOutcome:
    rounds: int
    stop: str
    interval_s: tuple[float, float] | None
    precision: float | None  # the relative half-width reached (None: too few samples for an interval)

    def record(self, rule: StopRule, on: str) -> dict[str, object]:
        """What a cell records about its rounds (interval in ms)."""
        return {"rounds_stop": self.stop,
                "rounds_interval_ms": [round(v * 1000, 4) for v in self.interval_s] if self.interval_s else None,
                "rounds_precision": None if self.precision is None else round(self.precision, 4),
                "rounds_target": {"precision": rule.precision, "confidence": rule.confidence, "on": on}}


def outcome(rule: StopRule, stop: str, rounds: int, series: Sequence[float]) -> RoundsOutcome:
    return RoundsOutcome(rounds=rounds, stop=stop, interval_s=median_interval(series, rule.confidence),
                         precision=relative_half_width(series, rule.confidence))


def run_rounds(benchmark, target: Callable[[], object], rule: StopRule, *, setup: Callable[[], None] | None = None,
               series: Callable[[list[float]], Sequence[float]] | None = None) -> RoundsOutcome:
    """Time ``target`` round by round into ``benchmark``'s stats until ``rule`` stops it.

    ``setup`` runs before each round outside the timed region (the drift pairing); ``series``
    maps the rounds' seconds to the samples the convergence test reads (default: the rounds).
    """
    if benchmark._mode:  # the same guard pedantic has: a fixture measures once
        raise RuntimeError(f"benchmark fixture already used in {benchmark._mode} mode")
    benchmark._mode = "benchmark.pedantic(...)"  # how the JSON and the fixture's checks see it
    try:
        stats_ = benchmark._make_stats(1)
        runner = benchmark._make_runner(target, (), {})
        seconds: list[float] = []
        started = time.perf_counter()
        while True:
            if setup is not None:
                setup()
            duration, _ = runner(None)
            stats_.update(duration)
            seconds.append(duration)
            sampled = series(seconds) if series else seconds
            stop = rule.stop(rounds=len(seconds), elapsed_s=time.perf_counter() - started, last_s=duration,
                             series=sampled)
            if stop:
                return outcome(rule, stop, len(seconds), sampled)
    except Exception:
        benchmark.has_error = True
        raise
