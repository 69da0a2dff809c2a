"""What a timed cell of either task does after its rounds: memory from a worker, the common
figures, efficiency and cost, all into pytest-benchmark's extra_info."""

from __future__ import annotations

from typing import Any, Callable

from quantbench.cells import Cell
from quantbench.efficiency.record import record_figures
from quantbench.measures.drift import RoundPairing
from quantbench.measures.record import common_figures
from quantbench.runner.context import CellResources


def worker_memory(res: CellResources, cell: Cell) -> Callable[[], dict[str, Any]]:
    """The memory workers' figures for ``cell`` (either task): inputs made by the run, the worker builds."""
    return lambda: res.memory_workers.peak(cell, source=res.source, settings=res.settings, encodings=res.encodings,
                                           preload=res.preload)


def finish_record(benchmark, res: CellResources, cell: Cell, extra: dict[str, Any], *, built, memory_figures: dict[str, Any],
                  pairing: RoundPairing | None) -> dict[str, Any]:
    """Everything a timed cell records besides its timings (both tasks), into extra_info."""
    settings = res.suite.measure
    extra = {**extra, **common_figures(cell, warmup_rounds=settings.warmup_rounds, threads=settings.threads,
                                       built=built, memory_figures=memory_figures, pairing=pairing)}
    extra.update(record_figures(cell, extra, config=res.config, limits=res.limits,
                                price_per_hour=res.suite.price_per_hour, threads=settings.threads))
    benchmark.extra_info.update(extra)
    return extra
