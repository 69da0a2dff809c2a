"""One latency cell, end to end: build (or reuse) the variant, check, warm up, time, measure.

The timed region is the forward pass on inputs already tokenized and on the device (plus a
device synchronize), under ``torch.inference_mode``. With ``measure.end_to_end`` the
tokenizer and the copy to the device are timed too.
"""

from __future__ import annotations

from typing import Any, Callable

from quantbench.cells import Cell
from quantbench.measures import latency, processes, rounds
from quantbench.measures.drift import RoundPairing
from quantbench.measures.record import cell_memory, check_finite, injected_fault
from quantbench.runner.context import CellResources
from quantbench.runner.timed_cell import finish_record, worker_memory
from quantbench.tasks.classification.task import TASK


def _call(res: CellResources, variant, cell: Cell) -> Callable[[], Any]:
    injected_fault(cell)
    if res.suite.measure.end_to_end:
        texts = TASK.texts_for(res.splits, cell)
        tokenizer = res.tokenizer

        def end_to_end():
            return TASK.run_once(variant, variant.prepare(TASK.encode(tokenizer, texts, cell.seq_len)), cell)

        return end_to_end
    inputs = variant.prepare(TASK.cell_inputs(res.splits, res.tokenizer, cell))

    def model_only():
        return TASK.run_once(variant, inputs, cell)

    return model_only


def measure_latency(benchmark, run, pool, cell: Cell) -> dict[str, Any]:
    """Run one latency cell through pytest-benchmark; return (and record) its extra_info."""
    import torch

    res = run.for_cell(cell)  # the machine's limits are measured before any variant is built or timed
    settings = res.suite.measure
    built = pool.get(cell, res.source, res.settings)
    call = _call(res, built.variant, cell)
    benchmark.params = cell.params()  # plain values, so the JSON's params are readable
    benchmark.group = "latency"
    with torch.inference_mode():
        check_finite(built.variant.to_numpy(call()), cell)
        # Memory before timing, never during: a polling thread would steal CPU from the rounds,
        # and a cell whose memory worker dies fails before any timing is recorded.
        memory_figures = cell_memory(settings.memory, built, cell, call, worker_memory(res, cell))
        # The reference was built (and warmed) with the cell's resources, so its first build does
        # not sit between this cell's warm-up and its rounds.
        pairing = RoundPairing(res.drift_reference, settings.reference_every_s) if res.drift_reference else None
        latency.warm_up(call, settings.warmup_rounds)
        # Rounds until the median's interval resolves the gate's threshold, or a cap (measures/rounds.py);
        # ``setup`` runs before each round, outside pytest-benchmark's timed region.
        rule = rounds.StopRule.for_rounds(settings)
        outcome = rounds.run_rounds(benchmark, call, rule, setup=pairing)
    process_figures = _more_processes(benchmark, res, cell, pairing, outcome) if settings.max_processes > 1 else {}
    samples = list(benchmark.stats.stats.data)
    source = res.source
    extra = {
        "cell_id": cell.id, "dataset": cell.dataset,
        "base_model": source.base_model, "model_fingerprint": source.fingerprint,
        "timed_region": "end_to_end" if settings.end_to_end else "model",
        **latency.summarize(samples, batch_size=cell.batch_size, seq_len=cell.seq_len),
        **outcome.record(rule, on="rounds"),
        **process_figures,
    }
    return finish_record(benchmark, res, cell, extra, built=built, memory_figures=memory_figures, pairing=pairing)


def _more_processes(benchmark, res: CellResources, cell: Cell, pairing: RoundPairing | None,
                    outcome: rounds.RoundsOutcome) -> dict[str, Any]:
    """Rounds in fresh worker processes after the harness's own (``measure.processes``), added to the
    cell's pytest-benchmark stats and drift pairing; returns what the cell records about its processes."""
    import os

    from quantbench.runner.process_timing import time_in_worker

    settings = res.suite.measure
    data = list(benchmark.stats.stats.data)
    taken = [processes.ProcessRounds(seconds=tuple(data), origin="harness", pid=os.getpid(), stop=outcome.stop,
                                     reference_s=tuple(pairing.per_round) if pairing else None)]
    encoding = TASK.cell_inputs(res.splits, res.tokenizer, cell)
    while not (stop := processes.should_stop(taken, minimum=settings.processes, maximum=settings.max_processes,
                                             precision=settings.precision, confidence=settings.confidence)):
        more = time_in_worker(cell, source=res.source, settings=res.settings, measure=settings, encoding=encoding,
                              preload=res.preload)
        for seconds in more.seconds:
            benchmark.stats.update(seconds)
        if pairing is not None:
            pairing.per_round.extend(more.reference_s or ())
        taken.append(more)
    return processes.figures(taken, stop=stop, confidence=settings.confidence)
