"""Peak memory of every planned shape of a variant, from one fresh worker per variant.

The run plans which (batch, tokens, new tokens) shapes each variant's timed cells will run;
the first cell of a variant asks, and one worker (:mod:`quantbench.measures.isolated`) builds
the variant once and measures them all. Later cells of the variant read the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from quantbench.cells import Cell


def shape_name(shape: tuple[int, int, int]) -> str:
    """``8x64`` (batch x tokens), or ``8x64+32`` for a generation shape with 32 new tokens."""
    batch, tokens, new_tokens = shape
    return f"{batch}x{tokens}" + (f"+{new_tokens}" if new_tokens else "")


class MemoryWorkers:
    def __init__(self, planned_shapes: dict[tuple, list[tuple[int, int, int]]]):
        self.planned_shapes = planned_shapes  # variant key -> shapes (shared with the run's plan)
        self._results: dict[tuple, dict[str, Any]] = {}

    @staticmethod
    def start(preload: tuple[str, ...]) -> None:
        from quantbench.measures.isolated import start_server

        start_server(preload)

    def peak(self, cell: Cell, *, source, settings, inputs: Callable[[Cell], dict], preload: tuple[str, ...]
             ) -> dict[str, Any]:
        """Peak RSS (MB over the worker's pre-build baseline) of ``cell``'s shape.

        ``inputs(cell)`` gives a shape's tokenizer output: the worker gets its inputs ready-made.
        """
        from quantbench.measures.isolated import measure_in_worker

        key = cell.variant_key
        this_shape = (cell.batch_size, cell.seq_len, cell.new_tokens)
        if key not in self._results:
            shapes = sorted(set(self.planned_shapes.get(key, [])) | {this_shape})
            cells = {shape_name(s): dataclasses.replace(cell, batch_size=s[0], seq_len=s[1], new_tokens=s[2])
                     for s in shapes}
            encodings = {name: inputs(c) for name, c in cells.items()}
            new_tokens = {name: c.new_tokens for name, c in cells.items()}
            self._results[key] = measure_in_worker(cell, source, dataclasses.replace(settings, measure_size=False),
                                                   encodings, new_tokens=new_tokens, preload=preload)
        result = self._results[key]
        shape = shape_name(this_shape)
        if shape not in result["peak_mb"]:  # a shape the plan did not foresee: measure it alone
            del self._results[key]
            self.planned_shapes.setdefault(key, []).append(this_shape)
            return self.peak(cell, source=source, settings=settings, inputs=inputs, preload=preload)
        return {"peak_rss_mb": result["peak_mb"][shape], "build_peak_rss_mb": result["build_peak_mb"],
                "rss_baseline_mb": result["baseline_mb"], "memory_isolation": "worker"}
