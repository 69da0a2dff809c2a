"""Timing one compute kernel family, within a bounded budget.

A runtime names each kernel family its cells run (fp32 GEMM, fbgemm's dynamic int8 linear,
ONNX Runtime's MatMulInteger, OpenVINO's int8 matmul...) and gives a *probe*: for a size ``n``
it builds the operands and returns one call of the kernel and the operations that call does.
This module picks the size and times it:

* **Size:** grow ``n`` through :data:`SIZES` until one call takes :data:`MIN_CALL_S` (long enough
  to time well) or the next size would not fit the budget. A kernel that runs a slow reference
  path on this CPU (bf16 without AVX512_BF16, torch's int8 GEMM without VNNI) therefore stops at
  a small size instead of spending minutes on a 2048³ product, as it did on an AVX2-only Zen 3.
* **Repetitions:** at least :data:`MIN_REPEATS`, at most ``repeats``, within ``budget_s``; the peak
  is the best one (a busy moment makes a repetition slower, never faster).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from quantbench.backends.runtime import Probe

#: Square sizes tried, smallest first (each step is 8x the work of the one before).
SIZES = (128, 256, 512, 1024, 2048)
MIN_CALL_S = 0.03  # one call this long is timed well by perf_counter
MIN_REPEATS = 3
BUDGET_S = 2.0  # per kernel: sizing and repetitions together


def _time_call(probe: Probe, timer: Callable[[Probe], float] | None) -> float:
    if timer is not None:
        return timer(probe)
    started = time.perf_counter()
    probe.call()
    probe.sync()
    return time.perf_counter() - started


def time_kernel(build: Callable[[int], Probe | None], *, name: str, unit: str, budget_s: float = BUDGET_S,
                repeats: int = 5, sizes: tuple[int, ...] = SIZES,
                timer: Callable[[Probe], float] | None = None) -> dict[str, Any] | None:
    """The kernel's peak throughput: best repetition at the size picked as above. None when the
    probe has nothing to run here (``build`` returned None)."""
    started = time.perf_counter()
    probe, seconds = None, 0.0
    for i, n in enumerate(sizes):
        candidate = build(n)
        if candidate is None:  # too large for this device or kernel: keep the last size
            if probe is None:
                return None
            break
        _time_call(candidate, timer)  # warm-up: allocation, kernel selection, packing
        took = _time_call(candidate, timer)
        probe, seconds = candidate, took
        spent = time.perf_counter() - started
        next_s = took * 8 * MIN_REPEATS  # the next size is 8x the work, timed MIN_REPEATS times
        if took >= MIN_CALL_S or i == len(sizes) - 1 or spent + 2 * next_s > budget_s:
            break
    values = [probe.ops / seconds]
    while len(values) < repeats and (len(values) < MIN_REPEATS or time.perf_counter() - started + seconds < budget_s):
        seconds = _time_call(probe, timer)
        values.append(probe.ops / seconds)
    return _result(name, unit, probe, values, started)


def _result(name: str, unit: str, probe: Probe, ops_per_s: list[float], started: float) -> dict[str, Any]:
    values = [v / 1e9 for v in ops_per_s]
    return {"name": name, "peak": round(max(values), 3), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3), "unit": unit, "method": probe.method,
            "size": probe.shape, "repetitions": [round(v, 3) for v in values],
            "seconds": round(time.perf_counter() - started, 3)}
