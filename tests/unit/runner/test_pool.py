"""The pool's one job: build a variant once, reuse it, release it before the next, remember failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from quantbench import registry
from quantbench.backends.base import BuildInfo, BuildSettings, ModelSource, Variant
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.runner.pool import VariantPool

BUILT: list[str] = []
CLOSED: list[str] = []


class _Fake(Variant):
    def __init__(self, quant):
        self.quant, self.backend, self.device = quant, "pytorch", "cpu"
        self.info = BuildInfo(disk_size_bytes=1, param_count=1, quantized_layers=1, quant_config={})
        self.weights = bytearray(32 * 1024 * 1024)  # 32 MB the build peak must see

    def prepare(self, encoding):
        return encoding

    def forward(self, inputs):
        return np.zeros((1, 2), dtype=np.float32)

    def to_numpy(self, logits):
        return logits

    def close(self):
        CLOSED.append(self.quant)
        self.weights = None


def fake_builder(source, settings):
    if settings.options.get("fail"):
        raise RuntimeError("the library said no")
    BUILT.append(settings.options["quant"])
    return _Fake(settings.options["quant"])


@pytest.fixture
def pool(monkeypatch):
    BUILT.clear()
    CLOSED.clear()
    for quant in ("fp32", "dynamic_int8"):
        original = registry.recipe(quant, "pytorch")
        recipe = dataclasses.replace(original, method=dataclasses.replace(original.method,
                                                                          builder=f"{__name__}:fake_builder"))
        monkeypatch.setitem(registry._index()["recipes"], (quant, "pytorch"), recipe)
    return VariantPool()


SOURCE = ModelSource(name="m", path=Path("."), fingerprint="x")


def _get(pool, quant, batch=1, **options):
    cell = Cell("m", "d", quant, "pytorch", "cpu", batch, 16)
    return pool.get(cell, SOURCE, BuildSettings(device="cpu", threads=1, options={"quant": quant, **options}))


def test_a_variant_is_built_once_for_all_its_cells_and_released_before_the_next(pool):
    first = _get(pool, "fp32", batch=1)
    assert _get(pool, "fp32", batch=8) is first
    assert BUILT == ["fp32"]
    assert first.build_peak_rss - first.baseline_rss >= 16 * 1024 * 1024  # the build's own memory
    _get(pool, "dynamic_int8")
    assert BUILT == ["fp32", "dynamic_int8"] and CLOSED == ["fp32"]
    pool.release()
    assert CLOSED == ["fp32", "dynamic_int8"]


def test_a_failed_build_fails_later_cells_with_its_reason_without_building_again(pool):
    with pytest.raises(RuntimeError, match="the library said no"):
        _get(pool, "fp32", fail=True)
    with pytest.raises(QuantbenchError, match="failed to build earlier: RuntimeError: the library said no"):
        _get(pool, "fp32", batch=8, fail=True)
    assert BUILT == []
