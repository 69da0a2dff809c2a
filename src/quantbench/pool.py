"""A variant's lifecycle: build it once per run, reuse it, release it; one in memory at a time.

Cells run grouped by variant (see :mod:`quantbench.cells`), so the pool builds a variant when
its first cell asks, reuses it for every batch size, and releases it before building the next.
The resident-memory baseline is taken after that release and before the build, so one
variant's memory is never charged to another. The pool also holds the run's shared resources
(splits, resolved checkpoints, tokenizers, drift references); what a cell feeds its variant is
its task's business (quantbench.tasks).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from quantbench import models, registry
from quantbench.backends.base import BuildSettings, ModelSource, Variant
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.measures.memory import PeakRSS, release_memory, reset_cuda_peaks, rss_bytes
from quantbench.suite import Suite

if TYPE_CHECKING:
    from quantbench.data import Splits

log = logging.getLogger(__name__)


@dataclass
class Built:
    variant: Variant
    baseline_rss: int  # bytes, before the build started
    build_peak_rss: int  # bytes, the peak while building


def shape_name(shape: tuple[int, int, int]) -> str:
    """``8x64`` (batch x tokens), or ``8x64+32`` for a generation shape with 32 new tokens."""
    batch, tokens, new_tokens = shape
    return f"{batch}x{tokens}" + (f"+{new_tokens}" if new_tokens else "")


class VariantPool:
    def __init__(self, suite: Suite, *, latency_shapes: dict[tuple, list[tuple[int, int, int]]] | None = None):
        self.suite = suite
        # variant key -> the (batch, tokens, new tokens) shapes its cells will run: one memory worker
        # per variant measures them all.
        self.latency_shapes = latency_shapes or {}
        self._current: tuple[tuple, Built] | None = None
        self._failed: dict[tuple, str] = {}
        self._memory: dict[tuple, dict[str, Any]] = {}
        self._preload: tuple[str, ...] | None = None  # modules memory workers get from the forkserver
        self.setup: dict[str, dict[str, Any]] = {}  # model name -> fine-tune facts (embedded model)
        self.limits: dict[str, dict[str, Any]] = {}  # device -> this machine's measured limits

    @functools.cached_property
    def splits(self) -> Splits:
        from quantbench import data  # pandas: imported when a cell runs, not at collection

        return data.load_splits(self.suite.dataset, calibration_samples=self.suite.calibration.samples)

    @functools.lru_cache(maxsize=None)
    def source(self, model_name: str) -> ModelSource:
        source, setup = models.resolve(self.suite.model(model_name), self.splits)
        if setup:
            self.setup[model_name] = setup
        return source

    @functools.lru_cache(maxsize=None)
    def tokenizer(self, model_name: str):
        from transformers import AutoTokenizer

        source = self.source(model_name)
        return AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)

    @functools.lru_cache(maxsize=None)
    def drift_reference(self, backend: str, device: str):
        """The fixed reference workload for ``backend`` on ``device`` (built once per pair)."""
        from quantbench.measures.drift import make_reference

        return make_reference(backend, device, self.suite.measure.threads)

    def machine_limits(self, device: str) -> dict[str, Any] | None:
        """This machine's peaks for ``device`` (measured once, cached on disk); None when turned off."""
        if not self.suite.measure.efficiency:
            return None
        if device not in self.limits:
            from quantbench.efficiency import machine_limits

            self.limits[device] = machine_limits(device=device, threads=self.suite.measure.threads)
        return self.limits[device]

    def efficiency(self, cell: Cell, extra_info: dict[str, Any]) -> dict[str, Any]:
        """Efficiency and cost figures of a finished cell (an impossible share is recorded as an error)."""
        import json

        from quantbench.efficiency import EfficiencyError, cell_efficiency, cost_figures

        out = cost_figures(extra_info, self.suite.price_per_hour)
        limits = self.machine_limits(cell.device)
        if limits is None:
            return out
        config = json.loads((self.source(cell.model).path / "config.json").read_text())
        try:
            return {**out, **cell_efficiency(config=config, task=cell.task, params=cell.params(),
                                             extra_info=extra_info, limits=limits)}
        except EfficiencyError as exc:
            log.warning("quantbench: %s", exc)
            return {**out, "efficiency_error": str(exc)}

    def task(self, model_name: str):
        from quantbench import tasks

        return tasks.get(self.suite.model(model_name).task)

    def cell_inputs(self, cell: Cell) -> dict[str, np.ndarray]:
        """The cell's inputs as tokenizer output (numpy), built by its task."""
        return self.task(cell.model).cell_inputs(self.splits, self.tokenizer(cell.model), cell)

    def get(self, cell: Cell) -> Built:
        key = cell.variant_key
        if key in self._failed:
            raise QuantbenchError(f"variant {cell.variant_id} failed to build earlier: {self._failed[key]}")
        if self._current and self._current[0] == key:
            return self._current[1]
        self.release(collect=False)  # _build collects before its baseline
        try:
            built = self._build(cell)
        except QuantbenchError as exc:
            self._failed[key] = str(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a library error fails this variant only, with its reason
            self._failed[key] = f"{type(exc).__name__}: {exc}"
            raise
        self._current = (key, built)
        return built

    def settings(self, cell: Cell) -> BuildSettings:
        spec = self.suite.model(cell.model)
        return BuildSettings(device=cell.device, threads=self.suite.measure.threads,
                             options=self.suite.method_options.get(cell.quant, {}),
                             calibration=self.splits.calibration if cell.quant == "static_int8" else None,
                             calibration_method=self.suite.calibration.method, seq_len=spec.max_seq_len,
                             task=spec.task)

    def _build(self, cell: Cell) -> Built:
        builder = registry.recipe(cell.quant, cell.backend).load()
        source = self.source(cell.model)  # may fine-tune the embedded model: before the baseline
        settings = self.settings(cell)
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

    def start_memory_workers(self) -> None:
        """Start the memory workers' server (before any cell, while nothing is timed)."""
        if self.suite.measure.memory == "worker" and self.latency_shapes:
            from quantbench.measures.isolated import start_server

            start_server(self.worker_preload())

    def worker_preload(self, cell: Cell | None = None) -> tuple[str, ...]:
        """Modules the memory workers of this run would import: the planned variants' modeling
        code and their methods' libraries. Each is imported here first (this process builds
        those variants anyway); one that fails to import stays out, so it fails its own cells only."""
        if self._preload is None:
            import importlib

            from transformers.models.auto.configuration_auto import model_type_to_module_name

            planned = {*self.latency_shapes, *([cell.variant_key] if cell else [])}
            wanted: list[str] = []
            for model in sorted({key[0] for key in planned}):
                try:
                    config = json.loads((self.source(model).path / "config.json").read_text())
                    module = model_type_to_module_name(config["model_type"])
                    wanted.append(f"transformers.models.{module}.modeling_{module}")
                except Exception:  # noqa: BLE001 - a model that cannot resolve fails in its own cells
                    continue
            for quant, backend in sorted({key[1:3] for key in planned}):
                recipe = registry.recipe(quant, backend)
                if recipe and recipe.missing_dependency() is None:
                    wanted += [recipe.builder.split(":")[0], *recipe.requires, *recipe.preload]
            loaded = []
            for name in dict.fromkeys(wanted):
                try:
                    importlib.import_module(name)
                    loaded.append(name)
                except Exception:  # noqa: BLE001 - see the docstring
                    log.info("quantbench: %s is not preloaded for memory workers (it does not import)", name)
            self._preload = tuple(loaded)
        return self._preload

    def memory(self, cell: Cell) -> dict[str, Any]:
        """Peak RSS (MB over a pre-build baseline) of this cell's shape, measured once per variant.

        ``measure.memory: worker`` (default) measures in a fresh process; ``inprocess`` in this
        one, right after the variant was built (faster, but earlier variants can leak into it).
        """
        from quantbench.measures.isolated import measure_in_worker

        key = cell.variant_key
        this_shape = (cell.batch_size, cell.seq_len, cell.new_tokens)
        if key not in self._memory:
            shapes = sorted(set(self.latency_shapes.get(key, [])) | {this_shape})
            cells = {shape_name(s): dataclasses.replace(cell, batch_size=s[0], seq_len=s[1], new_tokens=s[2])
                     for s in shapes}
            encodings = {name: self.cell_inputs(c) for name, c in cells.items()}
            new_tokens = {name: c.new_tokens for name, c in cells.items()}
            settings = dataclasses.replace(self.settings(cell), measure_size=False)
            self._memory[key] = measure_in_worker(cell, self.source(cell.model), settings, encodings,
                                                  new_tokens=new_tokens, preload=self.worker_preload(cell))
        result = self._memory[key]
        shape = shape_name(this_shape)
        if shape not in result["peak_mb"]:  # a shape the plan did not foresee: measure it alone
            del self._memory[key]
            self.latency_shapes.setdefault(key, []).append(this_shape)
            return self.memory(cell)
        return {"peak_rss_mb": result["peak_mb"][shape], "build_peak_rss_mb": result["build_peak_mb"],
                "rss_baseline_mb": result["baseline_mb"], "memory_isolation": "worker"}
