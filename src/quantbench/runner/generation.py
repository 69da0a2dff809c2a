"""One generation cell, end to end: build (or reuse) the variant, check, warm up, time, measure.

Each round is one ``generate`` call (greedy, KV cache on, exactly ``new_tokens`` per row) on
prompts already tokenized and on the device, under ``torch.inference_mode``. pytest-benchmark
times the whole call (the generate latency); the task's step timer splits each round into the
time to first token and the decode time per token, so every figure keeps its raw rounds. After
the rounds, ``measure.prefill_rounds`` generate calls stop after the first token (how
optimum-benchmark times prefill): a prefill costs a fraction of a 32-token round, so the time to
first token gets enough samples for the gate's test while the full rounds stay few.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from quantbench.cells import Cell
from quantbench.measures import latency, rounds
from quantbench.measures.drift import RoundPairing
from quantbench.measures.record import cell_memory, check_finite, injected_fault
from quantbench.tasks.generation.task import TASK
from quantbench.tasks.generation.timer import StepTimer
from quantbench.runner.timed_cell import finish_record, worker_memory


def percentiles_ms(seconds: list[float]) -> dict[str, Any]:
    """p50/p90/p95/p99 and mean in ms, plus the raw rounds (seconds)."""
    ms = np.asarray(seconds, dtype=float) * 1000.0
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"p50": round(float(p50), 4), "p90": round(float(p90), 4), "p95": round(float(p95), 4),
            "p99": round(float(p99), 4), "mean": round(float(ms.mean()), 4),
            "raw_s": [round(float(s), 9) for s in seconds]}


def generation_figures(e2e_s: list[float], ttft_s: list[float], tpot_s: list[float], cell: Cell,
                       step_s: list[float] | None = None, prefill_s: list[float] | None = None) -> dict[str, Any]:
    """Latencies with percentiles and tokens/s, from the rounds (decode throughput counts
    batch x (new tokens - 1): the first token belongs to the prefill).

    The time to first token is sampled on every generate round (``ttft_s``) and on the
    prefill-only rounds (``prefill_s``: generate calls stopped after the first token, the same
    work up to that token). The inter-token latency (ITL) is every decode step's own time.
    """
    prefill_s = list(prefill_s or [])
    ttft = {**percentiles_ms([*ttft_s, *prefill_s]), "generate_rounds": len(ttft_s),
            "prefill_only_rounds": len(prefill_s)}
    tpot = percentiles_ms(tpot_s) if tpot_s else None
    e2e_p50_s = float(np.median(e2e_s))
    out: dict[str, Any] = {
        **latency.summarize(e2e_s, batch_size=cell.batch_size, seq_len=cell.seq_len),
        "ttft_ms": ttft, **{f"ttft_{q}_ms": ttft[q] for q in ("p50", "p90", "p95", "p99")},
        "total_tokens_per_s": round(cell.batch_size * cell.new_tokens / e2e_p50_s, 3),
        "prefill_tokens_per_s": round(cell.batch_size * cell.seq_len / (ttft["p50"] / 1000.0), 3),
    }
    # summarize's throughput figures count classification samples; for generation they would mislead.
    for key in ("throughput_samples_per_s", "throughput_tokens_per_s"):
        out.pop(key)
    if tpot:
        # Every decode step's own time: rounds x (new tokens - 1) samples, so a gate can test decode
        # with a few rounds (3 rounds alone give no 99 % interval of a shift).
        tpot["steps_s"] = [round(float(s), 9) for s in step_s or []]
        out.update({"tpot_ms": tpot, **{f"tpot_{q}_ms": tpot[q] for q in ("p50", "p90", "p95", "p99")},
                    "decode_tokens_per_s": round(cell.batch_size / (tpot["p50"] / 1000.0), 3)})
    if step_s:
        itl = {k: v for k, v in percentiles_ms(step_s).items() if k != "raw_s"}  # raw: tpot_ms.steps_s
        out.update({"itl_ms": {**itl, "steps": len(step_s)}, "itl_p50_ms": itl["p50"], "itl_p99_ms": itl["p99"]})
    return out


def warmup_cell(cell: Cell, warmup_new_tokens: int | None) -> Cell:
    """The cell a warm-up call runs: same batch and prompt, ``warmup_new_tokens`` new tokens.

    A first call pays for the prefill and the first decode step at the cell's shape (allocations,
    kernel choice); later decode steps reuse both, so a short warm-up warms what a full one does
    for a fraction of the time (measured: docs/generation.md).
    """
    if warmup_new_tokens is None or warmup_new_tokens >= cell.new_tokens:
        return cell
    return dataclasses.replace(cell, new_tokens=warmup_new_tokens)


def prefill_rounds(variant, inputs, cell: Cell, rule: rounds.StopRule, synchronize,
                   generate_ttft_s: list[float]) -> tuple[list[float], rounds.RoundsOutcome | None]:
    """Generate calls stopped after the first token, each one's time to first token: at least
    ``rule.min_rounds``, then until the time to first token (these and the generate rounds'
    first tokens, what the gate tests prefill on) converges, or a cap."""
    if rule.min_rounds == 0:
        return [], None
    timer = StepTimer(synchronize)
    first_token = dataclasses.replace(cell, new_tokens=1)
    started = time.perf_counter()
    while True:
        TASK.run_once(variant, inputs, first_token, timer)
        series = [*generate_ttft_s, *timer.ttft_s]
        stop = rule.stop(rounds=len(timer.ttft_s), elapsed_s=time.perf_counter() - started,
                         last_s=timer.ttft_s[-1], series=series)
        if stop:
            return timer.ttft_s, rounds.outcome(rule, stop, len(timer.ttft_s), series)


def measure_generation(benchmark, run, pool, cell: Cell) -> dict[str, Any]:
    """Run one generation cell through pytest-benchmark; return (and record) its extra_info."""
    import torch

    res = run.for_cell(cell)  # the machine's limits are measured before any variant is built or timed
    settings = res.suite.measure
    built = pool.get(cell, res.source, res.settings)
    variant = built.variant
    inputs = variant.prepare(TASK.cell_inputs(res.splits, res.tokenizer, cell))
    timer = StepTimer(variant.synchronize)

    def run_shape(shape: Cell):
        injected_fault(cell)
        return TASK.run_once(variant, inputs, shape, timer)

    def call():
        return run_shape(cell)

    warm_cell = warmup_cell(cell, None if variant.full_length_warmup else settings.warmup_new_tokens)

    benchmark.params = cell.params()
    benchmark.group = "generation"
    with torch.inference_mode():
        # The next-token logits after each prompt (all prompt_len long): what generate reads first.
        check_finite(variant.to_numpy(variant.logits_at(inputs, [cell.seq_len - 1] * cell.batch_size)), cell)
        memory_figures = cell_memory(settings.memory, built, cell, call, worker_memory(res, cell))
        pairing = RoundPairing(res.drift_reference, settings.reference_every_s) if res.drift_reference else None
        latency.warm_up(lambda: run_shape(warm_cell), settings.warmup_rounds)
        timer.reset()  # warm-up steps are not rounds
        # Decode is gated on every step's time: the rounds stop once those resolve the threshold
        # (a one-token cell has no decode steps: its rounds are the series).
        rule = rounds.StopRule.for_rounds(settings)
        decode = rounds.run_rounds(benchmark, call, rule, setup=pairing,
                                   series=(lambda _s: timer.step_s) if cell.new_tokens > 1 else None)
        prefill_s, prefill = prefill_rounds(variant, inputs, cell, rounds.StopRule.for_prefill(settings),
                                            variant.synchronize, list(timer.ttft_s))
    samples = list(benchmark.stats.stats.data)
    source = res.source
    extra = {
        "cell_id": cell.id, "dataset": cell.dataset, "task": cell.task, "base_model": source.base_model,
        "model_fingerprint": source.fingerprint, **({"baseline_note": source.baseline_note} if source.baseline_note else {}),
        "timed_region": "generate", "batch_size": cell.batch_size, "prompt_len": cell.seq_len,
        "new_tokens": cell.new_tokens,
        "generation": {"greedy": True, "use_cache": True, "min_new_tokens": cell.new_tokens,
                       "max_new_tokens": cell.new_tokens, "prompts": "held-out text (prompt split), cut to prompt_len"},
        "prefill_rounds": len(prefill_s), "warmup_new_tokens": warm_cell.new_tokens,
        **generation_figures(samples, timer.ttft_s, timer.tpot_s, cell, timer.step_s, prefill_s),
        **decode.record(rule, on="decode steps" if cell.new_tokens > 1 else "rounds"),
        **({f"ttft_{k}": v for k, v in prefill.record(rounds.StopRule.for_prefill(settings),
                                                     on="time to first token").items()} if prefill else {}),
    }
    if settings.max_processes > 1:  # said in the record and the run's summary, never silently one process
        extra["process_repetition"] = ("not taken: a generation cell times its rounds in the harness's process "
                                       f"only (measure.processes {settings.processes} applies to classification cells)")
    return finish_record(benchmark, res, cell, extra, built=built, memory_figures=memory_figures, pairing=pairing)
