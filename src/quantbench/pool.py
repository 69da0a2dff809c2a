"""Builds each variant once per run and keeps one in memory at a time.

Cells run grouped by variant (see :mod:`quantbench.cells`), so the pool builds a variant when
its first cell asks, reuses it for every batch size, and releases it before building the next.
The resident-memory baseline is taken after that release and before the build, so one
variant's memory is never charged to another.
"""

from __future__ import annotations

import dataclasses
import functools
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


class VariantPool:
    def __init__(self, suite: Suite, *, latency_shapes: dict[tuple, list[tuple[int, int]]] | None = None):
        self.suite = suite
        # variant key -> the (batch, seq) shapes its latency cells will run: one memory worker
        # per variant measures them all.
        self.latency_shapes = latency_shapes or {}
        self._current: tuple[tuple, Built] | None = None
        self._failed: dict[tuple, str] = {}
        self._memory: dict[tuple, dict[str, Any]] = {}
        self.setup: dict[str, dict[str, Any]] = {}  # model name -> fine-tune facts (embedded model)

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

    def texts_for(self, cell: Cell) -> list[str]:
        """``batch_size`` evaluation texts (cycled if the split is smaller)."""
        texts = self.splits.test.texts
        return [texts[i % len(texts)] for i in range(cell.batch_size)]

    def encode(self, model_name: str, texts: list[str], seq_len: int, *, fixed: bool = True) -> dict[str, np.ndarray]:
        """Tokenize to numpy; ``fixed`` pads every row to ``seq_len`` so the shape is the cell's."""
        encoded = self.tokenizer(model_name)(texts, padding="max_length" if fixed else True, truncation=True,
                                             max_length=seq_len, return_tensors="np")
        return dict(encoded)

    def get(self, cell: Cell) -> Built:
        key = cell.variant_key
        if key in self._failed:
            raise QuantbenchError(f"variant {cell.variant_id} failed to build earlier: {self._failed[key]}")
        if self._current and self._current[0] == key:
            return self._current[1]
        self.release()
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
                             calibration_method=self.suite.calibration.method, seq_len=spec.max_seq_len)

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

    def release(self) -> None:
        if self._current:
            self._current[1].variant.close()
            self._current = None
        release_memory()

    def predict(self, cell: Cell, texts: list[str], *, progress: bool = True) -> np.ndarray:
        """Logits for ``texts``, in input order, batched by the cell's batch size.

        Texts are batched in order of length so each batch pads little (same logits, less
        work); the result is put back in the caller's order.
        """
        import torch
        from tqdm.auto import tqdm

        variant = self.get(cell).variant
        order = np.argsort([len(t) for t in texts], kind="stable")
        logits = np.empty((len(texts), 0), dtype=np.float32)
        starts = range(0, len(texts), cell.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc=f"evaluate {cell.variant_id}", unit="batch", disable=not progress,
                              leave=False):
                index = order[start:start + cell.batch_size]
                encoding = self.encode(cell.model, [texts[i] for i in index], cell.seq_len, fixed=False)
                batch = variant.logits(encoding)
                if logits.shape[1] == 0:
                    logits = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
                logits[index] = batch
        return logits

    def memory(self, cell: Cell) -> dict[str, Any]:
        """Peak RSS (MB over a pre-build baseline) of this cell's shape, measured once per variant.

        ``measure.memory: worker`` (default) measures in a fresh process; ``inprocess`` in this
        one, right after the variant was built (faster, but earlier variants can leak into it).
        """
        from quantbench.measures.isolated import measure_in_worker

        key = cell.variant_key
        if key not in self._memory:
            shapes = sorted(set(self.latency_shapes.get(key, [])) | {(cell.batch_size, cell.seq_len)})
            texts = self.splits.test.texts
            encodings = {f"{bs}x{seq}": self.encode(cell.model, [texts[i % len(texts)] for i in range(bs)], seq)
                         for bs, seq in shapes}
            settings = dataclasses.replace(self.settings(cell), measure_size=False)
            self._memory[key] = measure_in_worker(cell, self.source(cell.model), settings, encodings)
        result = self._memory[key]
        shape = f"{cell.batch_size}x{cell.seq_len}"
        if shape not in result["peak_mb"]:  # a shape the plan did not foresee: measure it alone
            del self._memory[key]
            self.latency_shapes.setdefault(key, []).append((cell.batch_size, cell.seq_len))
            return self.memory(cell)
        return {"peak_rss_mb": result["peak_mb"][shape], "build_peak_rss_mb": result["build_peak_mb"],
                "rss_baseline_mb": result["baseline_mb"], "memory_isolation": "worker"}
