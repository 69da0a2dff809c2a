"""The runner: what a run shares (context.py), the variants it builds (pool.py), and each task's timed
cell (classification.py, generation.py, with what both record in timed_cell.py).

Bench modules call :func:`measure` for a timed cell and :func:`quality_scorer` for a task's quality
scorer; both dispatch on the cell's task through a lazy table, so adding a task is a line here.
"""

from __future__ import annotations

import importlib
from typing import Any

from quantbench.task_kinds import CLASSIFICATION, GENERATION, canonical

#: task -> "module:attr" of the function that times one cell of it through pytest-benchmark
_MEASURE = {CLASSIFICATION: "quantbench.runner.classification:measure_latency",
            GENERATION: "quantbench.runner.generation:measure_generation"}
#: task -> "module:attr" of the class that scores its variants' quality for a run
_QUALITY = {CLASSIFICATION: "quantbench.quality.classification:ClassificationQuality",
            GENERATION: "quantbench.quality.generation:GenerationQuality"}


def _load(target: str):
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def measure(benchmark, run, pool, cell) -> dict[str, Any]:
    """Time one cell of its task through pytest-benchmark; returns (and records) its extra_info."""
    return _load(_MEASURE[canonical(cell.task)])(benchmark, run, pool, cell)


def quality_scorer(task: str, run, pool):
    """The quality scorer of ``task`` for the run (it keeps predictions and fp32 references)."""
    return _load(_QUALITY[canonical(task)])(run, pool)
