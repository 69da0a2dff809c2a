"""A variant's lifecycle: build it once per run, reuse it, release it; one in memory at a time.

Cells run grouped by variant (see :mod:`quantbench.cells`), so the pool builds a variant when
its first cell asks, reuses it for every batch size, and releases it before building the next.
The resident-memory baseline is taken after that release and before the build, so one
variant's memory is never charged to another. What to build from (the checkpoint, the build
settings) comes from the caller: the pool knows nothing else of the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from quantbench import registry
from quantbench.backends.base import BuildSettings, ModelSource, Variant
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.measures.memory import PeakRSS, release_memory, reset_cuda_peaks, rss_bytes

log = logging.getLogger(__name__)


@dataclass
class Built:
    variant: Variant
    baseline_rss: int  # bytes, before the build started
    build_peak_rss: int  # bytes, the peak while building


class VariantPool:
    def __init__(self):
        self._current: tuple[tuple, Built] | None = None
        self._failed: dict[tuple, str] = {}

    def get(self, cell: Cell, source: ModelSource, settings: BuildSettings) -> Built:
        """``cell``'s variant, built from ``source`` with ``settings`` unless it is the one held.

        A variant that failed to build fails every later cell with the same reason, unbuilt.
        """
        key = cell.variant_key
        if key in self._failed:
            raise QuantbenchError(f"variant {cell.variant_id} failed to build earlier: {self._failed[key]}")
        if self._current and self._current[0] == key:
            return self._current[1]
        self.release(collect=False)  # _build collects before its baseline
        try:
            built = self._build(cell, source, settings)
        except QuantbenchError as exc:
            self._failed[key] = str(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a library error fails this variant only, with its reason
            self._failed[key] = f"{type(exc).__name__}: {exc}"
            raise
        self._current = (key, built)
        return built

    @staticmethod
    def _build(cell: Cell, source: ModelSource, settings: BuildSettings) -> Built:
        builder = registry.recipe(cell.quant, cell.backend).load()
        release_memory()
        reset_cuda_peaks(cell.device)
        baseline = rss_bytes()
        with PeakRSS() as peak:
            variant = builder(source, settings)
        log.info("quantbench: built %s in %.1fs", cell.variant_id, variant.info.build_seconds)
        return Built(variant, baseline, peak.peak)

    def release(self, *, collect: bool = True) -> None:
        if self._current:
            self._current[1].variant.close()
            self._current = None
        if collect:
            release_memory()
