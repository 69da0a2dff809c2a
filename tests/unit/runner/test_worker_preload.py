"""What the memory workers' forkserver imports before forking: the run's modeling code and libraries."""

from __future__ import annotations

import dataclasses

import pytest

from quantbench import cells, registry
from quantbench.runner.context import RunContext
from quantbench.suite import parse_suite
from tests.tiny import tiny_suite


def _pool(tiny_llama, tiny_data, backends):
    raw = tiny_suite(tiny_llama, tiny_data, backends=backends)
    raw["models"] = [{"name": "tinylm", "source": "path", "path": str(tiny_llama), "task": "text-generation"}]
    raw.update(prompt_lens=[8], new_tokens=[4])
    del raw["seq_lens"]
    suite = parse_suite(raw, where="suite.yaml")
    planned = [p.cell for p in cells.expand(suite) if not p.cell.per_variant]
    shapes = {}
    for cell in planned:
        shapes.setdefault(cell.variant_key, []).append((cell.batch_size, cell.seq_len, cell.new_tokens))
    return RunContext(suite, latency_shapes=shapes), planned


def test_preload_holds_the_planned_models_code_and_methods_libraries(tiny_llama, tiny_data):
    pool, planned = _pool(tiny_llama, tiny_data, ["pytorch"])
    preload = pool.worker_preload(planned[0])
    assert "transformers.models.llama.modeling_llama" in preload
    assert "quantbench.backends.pytorch.build" in preload
    # Only the run's methods: no ONNX Runtime when no cell runs on it.
    assert not any(name.startswith("optimum") for name in preload)
    assert pool.worker_preload(planned[-1]) is preload  # computed once: the forkserver starts once


def test_onnxruntime_cells_preload_the_decoder_class(tiny_llama, tiny_data):
    pytest.importorskip("optimum.onnxruntime", reason="the onnx extra is not installed")
    pool, planned = _pool(tiny_llama, tiny_data, ["pytorch", "onnxruntime"])
    assert "optimum.onnxruntime.modeling_decoder" in pool.worker_preload(planned[0])


def test_a_module_that_does_not_import_stays_out(tiny_llama, tiny_data, monkeypatch):
    pool, planned = _pool(tiny_llama, tiny_data, ["pytorch"])
    original = registry.recipe("dynamic_int8", "pytorch")
    broken = dataclasses.replace(original, method=dataclasses.replace(original.method,
                                                                      preload=("quantbench_no_such_module",)))
    monkeypatch.setitem(registry._index()["recipes"], ("dynamic_int8", "pytorch"), broken)
    preload = pool.worker_preload(planned[0])
    assert "quantbench_no_such_module" not in preload
    assert "transformers.models.llama.modeling_llama" in preload
