"""Builds each variant once per run and keeps one in memory at a time.

Cells run grouped by variant (see :mod:`quantbench.cells`), so the pool builds a variant when
its first cell asks, reuses it for every batch size, and releases it before building the next.
The resident-memory baseline is taken after that release and before the build, so one
variant's memory is never charged to another.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantbench import data, models, registry
from quantbench.backends.base import BuildSettings, ModelSource, Variant
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.measures.memory import PeakRSS, release_memory, reset_cuda_peaks, rss_bytes
from quantbench.suite import Suite

log = logging.getLogger(__name__)


@dataclass
class Built:
    variant: Variant
    baseline_rss: int  # bytes, before the build started
    build_peak_rss: int  # bytes, the peak while building


class VariantPool:
    def __init__(self, suite: Suite):
        self.suite = suite
        self._current: tuple[tuple, Built] | None = None
        self._failed: dict[tuple, str] = {}

    @functools.cached_property
    def splits(self) -> data.Splits:
        return data.load_splits(self.suite.dataset, calibration_samples=self.suite.calibration.samples)

    @functools.lru_cache(maxsize=None)
    def source(self, model_name: str) -> ModelSource:
        return models.resolve(self.suite.model(model_name), self.splits)

    @functools.lru_cache(maxsize=None)
    def tokenizer(self, model_name: str):
        from transformers import AutoTokenizer

        source = self.source(model_name)
        return AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)

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

    def _build(self, cell: Cell) -> Built:
        recipe = registry.recipe(cell.quant, cell.backend)
        builder = recipe.load()
        source = self.source(cell.model)  # may fine-tune the embedded model: before the baseline
        spec = self.suite.model(cell.model)
        settings = BuildSettings(device=cell.device, threads=self.suite.measure.threads,
                                 options=self.suite.method_options.get(cell.quant, {}),
                                 calibration=self.splits.calibration if cell.quant == "static_int8" else None,
                                 calibration_method=self.suite.calibration.method, seq_len=spec.max_seq_len)
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
        """Logits for ``texts`` in batches of the cell's batch size (tokenizer outside the model)."""
        import torch
        from tqdm.auto import tqdm

        variant = self.get(cell).variant
        chunks = []
        starts = range(0, len(texts), cell.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc=f"evaluate {cell.variant_id}", unit="batch", disable=not progress,
                              leave=False):
                encoding = self.encode(cell.model, texts[start:start + cell.batch_size], cell.seq_len, fixed=False)
                chunks.append(variant.logits(encoding))
        return np.concatenate(chunks)

    def describe_source(self, model_name: str) -> dict[str, Any]:
        source = self.source(model_name)
        return {"path": str(source.path), "fingerprint": source.fingerprint, "base_model": source.base_model}
