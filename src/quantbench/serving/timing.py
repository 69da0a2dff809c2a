"""What the system under test saw itself: completed queries, percentiles, inter-token latency, goodput.

Each query's clock starts when LoadGen issued it to the system (LoadGen's own clock starts at the
scheduled time, a few microseconds earlier), so these percentiles are a cross-check on LoadGen's.

* latency = end - arrival; TTFT = first token - arrival; TPOT = (end - first token) / (tokens - 1),
  vLLM's definition; ITL = every gap between two consecutive output tokens of one query.
* **Goodput** (vLLM, DistServe): the queries that met *every* SLO limit, per second of the run
  (first arrival to last answer). A query answered empty by an abort meets nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.serving.sut import Query

QUANTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {}
    ms = np.asarray(seconds, dtype=float) * 1000.0
    out = {name: round(float(np.percentile(ms, q)), 4) for name, q in QUANTILES.items()}
    out["mean"] = round(float(ms.mean()), 4)
    return out


def query_figures(q: Query) -> dict[str, float]:
    """One answered query's latency, TTFT and TPOT in seconds (TTFT/TPOT where it streamed tokens)."""
    out = {"latency": q.done - q.arrival}
    if q.first is not None:
        out["ttft"] = q.first - q.arrival
        if q.tokens > 1:
            out["tpot"] = (q.done - q.first) / (q.tokens - 1)
    return out


def meets(figures: dict[str, float], bounds_ms: dict[str, float]) -> bool:
    """Whether one query met every SLO limit (``{"latency": ms}`` or ``{"ttft": ms, "tpot": ms}``)."""
    return all(name in figures and figures[name] * 1000.0 <= limit for name, limit in bounds_ms.items())


def client_figures(finished: list[Query], bounds_ms: dict[str, float]) -> dict[str, Any]:
    """The system's own view of one point: counts, rate, percentiles, ITL and goodput."""
    answered = [q for q in finished if q.done is not None]
    if not answered:
        return {"completed": 0}
    span = max(q.done for q in answered) - min(q.arrival for q in answered)
    per_query = [query_figures(q) for q in answered]
    out: dict[str, Any] = {"completed": len(answered), "span_s": round(span, 4),
                           "completed_qps": round(len(answered) / span, 4) if span > 0 else None,
                           "latency_ms": percentiles_ms([f["latency"] for f in per_query])}
    for name in ("ttft", "tpot"):
        values = [f[name] for f in per_query if name in f]
        if values:
            out[f"{name}_ms"] = percentiles_ms(values)
    gaps = [b - a for q in answered for a, b in zip(q.token_times, q.token_times[1:])]
    if gaps:
        out["itl_ms"] = {**percentiles_ms(gaps), "gaps": len(gaps)}
    if bounds_ms:
        good = sum(meets(f, bounds_ms) for f in per_query)
        out.update(meeting_slo=good, goodput_qps=round(good / span, 4) if span > 0 else None)
        # Per figure, as each percentile is judged on its own: the capacity fit counts these.
        out["over_bound"] = {name: sum(not (name in f and f[name] * 1000.0 <= limit) for f in per_query)
                             for name, limit in bounds_ms.items()}
    return out
