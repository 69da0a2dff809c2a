"""What one run shares: the suite, its data, resolved models, tokenizers and this machine's limits.

The plugin makes one :class:`RunContext` per pytest session. A timed cell reads its
:class:`CellResources` from it in one call: plain data (the cell's data, its model's checkpoint,
tokenizer and config, the build settings of its variant, the inputs of every planned shape of
that variant, the modules memory workers preload, this machine's limits, the drift reference)
that it hands down to the pool, the backends and the measures. Nothing below calls back into it.
Everything here is computed on first use and kept for the run.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quantbench import registry
from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.cells import Cell
from quantbench.measures.workers import MemoryWorkers
from quantbench.suite import Suite

if TYPE_CHECKING:
    from quantbench.data import Splits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellResources:
    """What one cell reads from the run, gathered in one call and handed down from there."""

    suite: Suite
    splits: Splits
    source: ModelSource
    tokenizer: Any
    settings: BuildSettings  # how the cell's variant is built
    config: dict[str, Any]  # the checkpoint's config.json
    memory_workers: MemoryWorkers
    preload: tuple[str, ...] = ()  # modules the memory workers preload
    # (batch, tokens, new tokens) -> tokenizer output, for every shape the variant's timed cells run:
    # the memory worker measures them all from one build (measures/workers.py)
    encodings: dict[tuple[int, int, int], dict[str, Any]] = field(default_factory=dict)
    limits: dict[str, Any] | None = None  # this machine's limits (timed cells with efficiency on)
    drift_reference: Any = None  # the reference workload (timed cells with drift on)


class RunContext:
    def __init__(self, suite: Suite, *, latency_shapes: dict[tuple, list[tuple[int, int, int]]] | None = None):
        self.suite = suite
        # variant key -> the (batch, tokens, new tokens) shapes its timed cells will run
        self.latency_shapes = latency_shapes if latency_shapes is not None else {}
        self.memory_workers = MemoryWorkers()
        self.setup: dict[str, dict[str, Any]] = {}  # model name -> fine-tune / conversion facts
        self._limit_devices: list[str] = []  # devices whose limits this run read or measured
        self._preload: tuple[str, ...] | None = None  # modules memory workers get from the forkserver

    # -- data and models ------------------------------------------------------------------

    @functools.cached_property
    def splits(self) -> Splits:
        from quantbench import data  # pandas: imported when a cell runs, not at collection

        return data.load_splits(self.suite.dataset, calibration_samples=self.suite.calibration.samples)

    @functools.lru_cache(maxsize=None)
    def source(self, model_name: str) -> ModelSource:
        from quantbench import models

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
    def model_config(self, model_name: str) -> dict[str, Any]:
        """The checkpoint's config.json (FLOP counts and modeling code read it)."""
        return json.loads((self.source(model_name).path / "config.json").read_text())

    @functools.cached_property
    def probe(self):
        """The counterfactual probe sentences (the suite's file, or the packaged templates)."""
        from quantbench.probe import load_probe

        return load_probe(self.suite.fairness.get("probe_path"))

    @functools.cached_property
    def positive_label(self) -> tuple[int | None, str]:
        """The label index selection rates and the probe count as positive, and how it was chosen.

        The suite's ``fairness.positive_label`` if set (an unknown name is an error naming it),
        else a label named "positive". None when neither: a binary dataset's DP and EO do not
        depend on the choice, so data fairness still runs; the sentiment probe does not.
        """
        from quantbench.errors import SuiteError

        names = [str(n) for n in self.splits.label_names]
        chosen = self.suite.fairness.get("positive_label")
        if chosen is not None:
            if str(chosen) not in names:
                raise SuiteError(f"fairness.positive_label: {chosen!r} is not one of the dataset's labels {names}")
            return names.index(str(chosen)), f"fairness.positive_label: {chosen!r}"
        if "positive" in names:
            return names.index("positive"), "the label named 'positive'"
        return None, f"no label is named 'positive' (labels: {names}) and the suite sets no fairness.positive_label"

    @functools.cached_property
    def probe_off_reason(self) -> str | None:
        """Why the counterfactual probe does not run (None when it does)."""
        if not self.suite.fairness.get("probe", True):
            return "the suite turns the fairness probe off (fairness.probe: false)"
        index, how = self.positive_label
        if index is None:
            return (f"the fairness probe is about sentiment and is off: {how}; set fairness.positive_label "
                    "to turn it on")
        return None

    def build_settings(self, cell: Cell) -> BuildSettings:
        """How ``cell``'s variant is built: device, threads, method options, calibration data."""
        spec = self.suite.model(cell.model)
        return BuildSettings(device=cell.device, threads=self.suite.measure.threads,
                             options=self.suite.method_options.get(cell.quant, {}),
                             calibration=self.splits.calibration if cell.quant == "static_int8" else None,
                             calibration_method=self.suite.calibration.method, seq_len=spec.max_seq_len,
                             task=spec.task)

    def for_cell(self, cell: Cell, *, timed: bool = True) -> CellResources:
        """Everything ``cell`` reads from the run. A timed cell also gets this machine's limits
        (measured before any variant is built or timed), the drift reference (built and warm
        before the cell warms up) and, with memory workers, the inputs of its variant's shapes."""
        measure = self.suite.measure
        limits = self.machine_limits(cell.device) if timed else None
        reference = self.drift_reference(cell.backend, cell.device) if timed and measure.drift_reference else None
        workers = timed and measure.memory == "worker"
        return CellResources(
            suite=self.suite, splits=self.splits, source=self.source(cell.model), tokenizer=self.tokenizer(cell.model),
            settings=self.build_settings(cell), config=self.model_config(cell.model),
            memory_workers=self.memory_workers, preload=self.worker_preload(cell) if workers else (),
            encodings=self.shape_inputs(cell) if workers else {}, limits=limits, drift_reference=reference)

    def shape_inputs(self, cell: Cell) -> dict[tuple[int, int, int], dict[str, Any]]:
        """Tokenizer output for every shape the plan runs on ``cell``'s variant, and ``cell``'s own."""
        import dataclasses

        from quantbench import tasks

        task = tasks.get(cell.task)
        shapes = {*self.latency_shapes.get(cell.variant_key, []), (cell.batch_size, cell.seq_len, cell.new_tokens)}
        return {shape: task.cell_inputs(self.splits, self.tokenizer(cell.model), dataclasses.replace(
            cell, batch_size=shape[0], seq_len=shape[1], new_tokens=shape[2])) for shape in sorted(shapes)}

    # -- this machine -------------------------------------------------------------------------

    @functools.lru_cache(maxsize=None)
    def drift_reference(self, backend: str, device: str):
        """The fixed reference workload for ``backend`` on ``device`` (built once per pair)."""
        from quantbench.measures.drift import make_reference

        return make_reference(backend, device, self.suite.measure.threads)

    def compute_kernels(self, device: str) -> list[str]:
        """The kernel families the planned variants on ``device`` run (registry recipes and options)."""
        wanted = []
        for _model, quant, backend, where in sorted(self.latency_shapes):
            recipe = registry.recipe(quant, backend)
            if where == device and recipe is not None:
                wanted.append(recipe.compute_for(self.suite.method_options.get(quant, {})))
        return sorted(set(wanted))

    def machine_limits(self, device: str) -> dict[str, Any] | None:
        """This machine's peaks for ``device``: the kernel families this run's cells run, fp32 and
        the bandwidth (cached on disk, see efficiency.limits); None when the suite turns efficiency off."""
        if not self.suite.measure.efficiency:
            return None
        from quantbench.efficiency import limits

        threads = self.suite.measure.threads
        if device not in self._limit_devices:
            limits.machine_limits(device=device, threads=threads, kernels=self.compute_kernels(device))
            self._limit_devices.append(device)
        return limits.current(device, threads)

    @property
    def limits(self) -> dict[str, dict[str, Any]]:
        """device -> the limits this run used (families measured on demand later included)."""
        from quantbench.efficiency import limits

        return {device: limits.current(device, self.suite.measure.threads) for device in self._limit_devices}

    # -- memory workers -----------------------------------------------------------------------

    def start_memory_workers(self) -> None:
        """Start the memory workers' server (before any cell, while nothing is timed)."""
        if self.suite.measure.memory == "worker" and self.latency_shapes:
            self.memory_workers.start(self.worker_preload())

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
                    module = model_type_to_module_name(self.model_config(model)["model_type"])
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
