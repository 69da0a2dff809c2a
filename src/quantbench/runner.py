"""One latency cell, end to end: build (or reuse) the variant, check, warm up, time, measure.

The timed region is the forward pass on inputs already tokenized and on the device (plus a
device synchronize), under ``torch.inference_mode``. With ``measure.end_to_end`` the
tokenizer and the copy to the device are timed too.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.measures import latency, memory
from quantbench.measures.drift import RoundPairing
from quantbench.pool import Built, VariantPool

MB = memory.MB


class NonFiniteOutput(QuantbenchError):
    """The variant produced NaN or Inf: the cell fails and is not timed."""


def check_finite(logits: np.ndarray, cell: Cell) -> None:
    if not np.all(np.isfinite(logits)):
        bad = int((~np.isfinite(logits)).sum())
        raise NonFiniteOutput(f"{cell.id}: {bad} of {logits.size} logits are NaN or Inf; not timing this cell")


#: Fault injection for the harness's own tests: the cell whose id this names runs out of memory.
INJECT_OOM_ENV = "QUANTBENCH_INJECT_OOM"


def _call(pool: VariantPool, built: Built, cell: Cell) -> Callable[[], Any]:
    variant = built.variant
    if os.environ.get(INJECT_OOM_ENV) == cell.id:
        def out_of_memory():
            raise MemoryError(f"injected fault ({INJECT_OOM_ENV}): simulated out-of-memory in {cell.id}")

        return out_of_memory
    task = pool.task(cell.model)
    if pool.suite.measure.end_to_end:
        texts = task.texts_for(pool.splits, cell)
        tokenizer = pool.tokenizer(cell.model)

        def end_to_end():
            return task.run_once(variant, variant.prepare(task.encode(tokenizer, texts, cell.seq_len)), cell)

        return end_to_end
    inputs = variant.prepare(pool.cell_inputs(cell))

    def model_only():
        return task.run_once(variant, inputs, cell)

    return model_only


def build_facts(built: Built) -> dict[str, Any]:
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


def _memory(pool: VariantPool, built: Built, cell: Cell, call: Callable[[], Any]) -> dict[str, Any]:
    if pool.suite.measure.memory == "worker":
        figures = pool.memory(cell)
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


def measure_latency(benchmark, pool: VariantPool, cell: Cell) -> dict[str, Any]:
    """Run one latency cell through pytest-benchmark; return (and record) its extra_info."""
    import torch

    settings = pool.suite.measure
    # The machine's limits are measured (once, then cached) before any variant is built or timed.
    pool.machine_limits(cell.device)
    built = pool.get(cell)
    call = _call(pool, built, cell)
    benchmark.params = cell.params()  # plain values, so the JSON's params are readable
    benchmark.group = "latency"
    with torch.inference_mode():
        check_finite(built.variant.to_numpy(call()), cell)
        # Memory before timing, never during: a polling thread would steal CPU from the rounds,
        # and a cell whose memory worker dies fails before any timing is recorded.
        memory_figures = _memory(pool, built, cell, call)
        # The reference is built (and warm) before the cell warms up, so its first build does not
        # sit between this cell's warm-up and its rounds.
        pairing = (RoundPairing(pool.drift_reference(cell.backend, cell.device), settings.reference_every_s)
                   if settings.drift_reference else None)
        estimate = latency.warm_up(call, settings.warmup_rounds)
        rounds = latency.plan_rounds(estimate, settings)
        # ``setup`` runs before each round, outside pytest-benchmark's timed region.
        benchmark.pedantic(call, setup=pairing, rounds=rounds, iterations=1, warmup_rounds=0)
    samples = list(benchmark.stats.stats.data)
    source = pool.source(cell.model)
    extra = {
        "cell_id": cell.id, "dataset": cell.dataset,
        "base_model": source.base_model, "model_fingerprint": source.fingerprint, "timed_region": "end_to_end" if settings.end_to_end else "model",
        **latency.summarize(samples, batch_size=cell.batch_size, seq_len=cell.seq_len),
    }
    return record(benchmark, pool, cell, extra, built=built, memory_figures=memory_figures, pairing=pairing)


def record(benchmark, pool: VariantPool, cell: Cell, extra: dict[str, Any], *, built: Built,
           memory_figures: dict[str, Any], pairing: RoundPairing | None) -> dict[str, Any]:
    """What every timed cell records besides its timings (both tasks), written into extra_info."""
    import torch

    settings = pool.suite.measure
    extra = {
        **extra,
        **(drift_figures(pairing) if pairing else {}),
        "warmup_rounds": settings.warmup_rounds,
        "threads": torch.get_num_threads() if cell.backend == "pytorch" else (settings.threads or "ort-default"),
        **build_facts(built),
        **memory_figures,
        # The harness's own footprint: it must stay flat over a long sweep (variants are released).
        "harness_rss_mb": round(memory.rss_bytes() / MB, 2),
    }
    extra.update(pool.efficiency(cell, extra))
    benchmark.extra_info.update(extra)
    return extra
