"""Peak memory of every planned shape of a variant, from one fresh worker per variant.

The run plans which (batch, tokens, new tokens) shapes each variant's timed cells will run and
hands the first cell of a variant their inputs; one worker (:mod:`quantbench.measures.isolated`)
builds the variant once and measures them all. Later cells of the variant read the result.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from quantbench.cells import Cell


def shape_name(shape: tuple[int, int, int]) -> str:
    """``8x64`` (batch x tokens), or ``8x64+32`` for a generation shape with 32 new tokens."""
    batch, tokens, new_tokens = shape
    return f"{batch}x{tokens}" + (f"+{new_tokens}" if new_tokens else "")


class MemoryWorkers:
    def __init__(self) -> None:
        self._results: dict[tuple, dict[str, Any]] = {}  # variant key -> the worker's figures

    @staticmethod
    def start(preload: tuple[str, ...]) -> None:
        from quantbench.measures.isolated import start_server

        start_server(preload)

    def peak(self, cell: Cell, *, source, settings, encodings: dict[tuple[int, int, int], dict],
             preload: tuple[str, ...]) -> dict[str, Any]:
        """Peak RSS (MB over the worker's pre-build baseline) of ``cell``'s shape.

        ``encodings`` maps each (batch, tokens, new tokens) shape of the variant, ``cell``'s among
        them, to its tokenizer output: the worker gets its inputs ready-made.
        """
        from quantbench.measures.isolated import measure_in_worker

        key = cell.variant_key
        this_shape = (cell.batch_size, cell.seq_len, cell.new_tokens)
        shape = shape_name(this_shape)
        if key not in self._results or shape not in self._results[key]["peak_mb"]:
            # First cell of the variant, or a shape the first did not foresee: measure every shape given.
            named = {shape_name(s): e for s, e in encodings.items()}
            new_tokens = {shape_name(s): s[2] for s in encodings}
            self._results[key] = measure_in_worker(cell, source, dataclasses.replace(settings, measure_size=False),
                                                   named, new_tokens=new_tokens, preload=preload)
        result = self._results[key]
        return {"peak_rss_mb": result["peak_mb"][shape], "build_peak_rss_mb": result["build_peak_mb"],
                "rss_baseline_mb": result["baseline_mb"], "memory_isolation": "worker",
                **({"memory_allocator": result["allocator"]} if result.get("allocator") else {})}
