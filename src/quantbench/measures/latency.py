"""Latency and throughput from pytest-benchmark's own rounds.

The rounds are timed into pytest-benchmark's stats (measures/rounds.py decides when they stop);
this module warms a call up and summarizes the raw per-round seconds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def warm_up(call: Callable[[], object], rounds: int) -> float:
    """Run ``rounds`` untimed calls; return the median seconds of the calls after the first."""
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    # The first call pays one-off costs (allocations, kernel selection): leave it out.
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def summarize(samples_s: list[float], *, batch_size: int, seq_len: int) -> dict[str, object]:
    """Percentiles in ms and throughput, from the raw per-round seconds."""
    ms = np.asarray(samples_s, dtype=float) * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    latency = {"p50": p50, "p90": p90, "p95": p95, "p99": p99, "mean": ms.mean(),
               "std": ms.std(ddof=1) if len(ms) > 1 else 0.0, "min": ms.min(), "max": ms.max()}
    return {
        "latency_ms": {k: round(float(v), 4) for k, v in latency.items()},
        "throughput_samples_per_s": round(batch_size / (p50 / 1000.0), 3),
        "throughput_tokens_per_s": round(batch_size * seq_len / (p50 / 1000.0), 1),
        "rounds": len(samples_s),
    }
