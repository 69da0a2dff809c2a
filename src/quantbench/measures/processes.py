"""Repetition where the noise lives: a timed cell's rounds in several processes.

On the 2-core VMs rounds inside one process are tight and whole processes differ: nine processes
back to back on the Zen 3 VM gave the same cell's median with a 10-16 % coefficient of variation
across processes against 4-10 % within one (issue 34). An interval built from one process's rounds
is then far too narrow. With ``measure.processes: k`` a cell's rounds are taken in ``k`` processes
(the harness's own, then fresh workers, runner/process_timing.py); each process gives one sample,
its median divided by the median of the drift reference timed beside its rounds, and the interval
of the cell is a t interval over those samples on the log scale. For a balanced two-level design
(processes, rounds inside them) that is the mixed model's interval for the mean: the rounds only
enter through their process's median, so the between-process variance is what the interval knows.

How much of the variance lies between processes (the intraclass correlation of the log rounds) is
recorded per cell and summarized at the end of the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import stats

CONVERGED, PROCESS_CAP = "converged", "process cap"


@dataclass(frozen=True)
class ProcessRounds:
    """The rounds one process took for a cell, with the reference time paired with each round."""

    seconds: tuple[float, ...]
    reference_s: tuple[float, ...] | None
    origin: str  # "harness": the run's own process; "worker": a fresh one
    pid: int
    stop: str  # why its rounds stopped (measures/rounds.py)

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))

    @property
    def reference_median_s(self) -> float | None:
        return float(np.median(self.reference_s)) if self.reference_s else None

    @property
    def normalized(self) -> float:
        """The process's sample: its median over its reference's median (the median alone without one)."""
        reference = self.reference_median_s
        return self.median_s / reference if reference else self.median_s

    def record(self) -> dict[str, Any]:
        reference = self.reference_median_s
        return {"origin": self.origin, "pid": self.pid, "rounds": len(self.seconds), "stop": self.stop,
                "median_ms": round(self.median_s * 1000, 5),
                "reference_median_ms": None if reference is None else round(reference * 1000, 5)}


@dataclass(frozen=True)
class LogInterval:
    """A t interval of the mean of log samples: ``center`` ± ``half_width`` (``se`` with ``df``)."""

    center: float
    half_width: float
    se: float
    df: int

    @property
    def relative_half_width(self) -> float:
        return math.expm1(self.half_width)

    def bounds(self) -> tuple[float, float]:
        return math.exp(self.center - self.half_width), math.exp(self.center + self.half_width)


def log_interval(values: Sequence[float], confidence: float) -> LogInterval | None:
    """The t interval of the mean of ``log(values)`` at ``confidence``; None with fewer than two."""
    logs = np.log(np.asarray([v for v in values if v > 0 and math.isfinite(v)], float))
    n = len(logs)
    if n < 2:
        return None
    se = float(np.std(logs, ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    return LogInterval(center=float(np.mean(logs)), half_width=half, se=se, df=n - 1)


def variance_split(processes: Sequence[ProcessRounds]) -> dict[str, float] | None:
    """Between- and within-process standard deviations of the log rounds, and the between share of
    their variance (the intraclass correlation; one-way random-effects ANOVA estimates).

    None with fewer than two processes or a process of fewer than two rounds."""
    groups = [np.log(np.asarray(p.seconds, float)) for p in processes]
    if len(groups) < 2 or min(len(g) for g in groups) < 2:
        return None
    within = float(np.mean([np.var(g, ddof=1) for g in groups]))
    mean_rounds = float(np.mean([len(g) for g in groups]))
    between = max(0.0, float(np.var([g.mean() for g in groups], ddof=1)) - within / mean_rounds)
    total = between + within
    return {"between_sd": round(math.sqrt(between), 5), "within_sd": round(math.sqrt(within), 5),
            "between_share": round(between / total, 4) if total > 0 else 0.0}


def should_stop(processes: Sequence[ProcessRounds], *, minimum: int, maximum: int, precision: float | None,
                confidence: float) -> str | None:
    """After ``minimum`` processes, stop when the processes' interval is within ± ``precision``
    (the rounds' own target, one level up), or at ``maximum``."""
    count = len(processes)
    if count < minimum:
        return None
    interval = log_interval([p.normalized for p in processes], confidence)
    if precision and interval is not None and interval.relative_half_width <= precision:
        return CONVERGED
    if count >= maximum:
        return PROCESS_CAP
    return None if precision else PROCESS_CAP


def figures(processes: Sequence[ProcessRounds], *, stop: str, confidence: float) -> dict[str, Any]:
    """What a cell records about its processes (``extra_info``)."""
    interval = log_interval([p.normalized for p in processes], confidence)
    raw = log_interval([p.median_s for p in processes], confidence)
    return {
        "processes": [p.record() for p in processes],
        "process_stop": stop,
        # The median's interval across processes, in ms (raw medians, as a reader reads the p50).
        "process_interval_ms": [round(v * 1000, 4) for v in raw.bounds()] if raw else None,
        # The same over the reference-divided samples the gate tests: its relative half-width.
        "process_precision": round(interval.relative_half_width, 4) if interval else None,
        "process_variance": variance_split(processes),
    }
