"""What every timed cell records besides its timings, whatever its task.

A cell checks its variant's output is finite before timing, measures memory before timing
(never during: a polling thread would steal CPU from the rounds), and records the build
facts, the memory figures, the drift reference paired with each round and the thread count.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.measures import memory
from quantbench.measures.drift import RoundPairing

MB = memory.MB

#: Fault injection for the harness's own tests: the cell whose id this names runs out of memory.
INJECT_OOM_ENV = "QUANTBENCH_INJECT_OOM"


class NonFiniteOutput(QuantbenchError):
    """The variant produced NaN or Inf: the cell fails and is not timed."""


def check_finite(logits: np.ndarray, cell: Cell) -> None:
    if not np.all(np.isfinite(logits)):
        bad = int((~np.isfinite(logits)).sum())
        raise NonFiniteOutput(f"{cell.id}: {bad} of {logits.size} logits are NaN or Inf; not timing this cell")


def injected_fault(cell: Cell) -> None:
    """Raise the simulated out-of-memory error when the harness's own tests ask for it here."""
    if os.environ.get(INJECT_OOM_ENV) == cell.id:
        raise MemoryError(f"injected fault ({INJECT_OOM_ENV}): simulated out-of-memory in {cell.id}")


def build_facts(built) -> dict[str, Any]:
    """The variant's build facts (``built`` is a pool.Built): size, proof of quantization, cost."""
    info = built.variant.info
    return {
        "disk_size_mb": round(info.disk_size_bytes / MB, 3),
        "param_count": info.param_count,
        "quantized_layers": info.quantized_layers,
        "quant_config": info.quant_config,
        "build_seconds": round(info.build_seconds, 3),
        "build_cached": info.cached,
        "build_seconds_saved": info.saved_seconds,
        "build_peak_rss_mb": round((built.build_peak_rss - built.baseline_rss) / MB, 2),
        "rss_baseline_mb": round(built.baseline_rss / MB, 2),
    }


def cell_memory(mode: str, built, cell: Cell, call: Callable[[], Any],
                in_worker: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Peak memory of the cell's shape: ``in_worker()`` (``measure.memory: worker``, a fresh
    process), or in this process over the pre-build baseline (``inprocess``); plus CUDA peaks."""
    if mode == "worker":
        figures = in_worker()
    else:
        with memory.PeakRSS() as peak:
            for _ in range(3):
                call()
        figures = {"peak_rss_mb": round((peak.peak - built.baseline_rss) / MB, 2), "memory_isolation": "inprocess"}
    # CUDA peaks are per device, not per process: read them here, after a reset and a few calls.
    memory.reset_cuda_peaks(cell.device)
    if cell.device == "cuda":
        for _ in range(3):
            call()
    return {**figures, **memory.cuda_peaks(cell.device)}


def drift_figures(pairing: RoundPairing) -> dict[str, Any]:
    """The reference time paired with each round (same order as pytest-benchmark's data)."""
    return {"reference": pairing.reference.describe(),
            "reference_s": [round(s, 9) for s in pairing.per_round],
            "reference_ms_p50": round(float(np.median(pairing.per_round)) * 1000.0, 4)}


def common_figures(cell: Cell, *, warmup_rounds: int, threads: int | None, built,
                   memory_figures: dict[str, Any], pairing: RoundPairing | None) -> dict[str, Any]:
    """Drift pairing, warm-up, threads, build facts, memory and the harness's own footprint."""
    return {
        **(drift_figures(pairing) if pairing else {}),
        "warmup_rounds": warmup_rounds,
        "threads": built.variant.threads,  # as its runtime was told (Variant.threads)
        **build_facts(built),
        **memory_figures,
        # The harness's own footprint: it must stay flat over a long sweep (variants are released).
        "harness_rss_mb": round(memory.rss_bytes() / MB, 2),
    }
