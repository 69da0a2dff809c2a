"""What a run shares: resolved once, handed down; limits read once per device, for the families its cells run."""

from __future__ import annotations

import pytest

from quantbench.cells import Cell
from quantbench.runner.context import RunContext
from quantbench.suite import parse_suite
from tests.tiny import tiny_suite


@pytest.fixture
def run(tiny_model, tiny_data):
    raw = tiny_suite(tiny_model, tiny_data)
    raw["measure"]["efficiency"] = True
    raw["quantization"] = ["fp32", "static_int8"]
    raw["backends"] = ["pytorch", "onnxruntime"]
    return RunContext(parse_suite(raw, where="suite.yaml"))


def test_sources_and_tokenizers_resolve_once_and_settings_carry_calibration_only_for_static(run):
    assert run.source("tiny") is run.source("tiny")
    assert run.tokenizer("tiny") is run.tokenizer("tiny")
    assert run.model_config("tiny")["model_type"] == "bert"
    fp32 = run.build_settings(Cell("tiny", "toy", "fp32", "pytorch", "cpu", 4, 16))
    static = run.build_settings(Cell("tiny", "toy", "static_int8", "onnxruntime", "cpu", 4, 16))
    assert fp32.calibration is None and static.calibration is run.splits.calibration
    assert fp32.threads == run.suite.measure.threads and fp32.seq_len == 32


def test_limits_are_read_once_per_device_for_the_kernel_families_the_planned_cells_run(run, monkeypatch):
    from quantbench.efficiency import limits

    calls = []
    monkeypatch.setattr(limits, "machine_limits", lambda **kw: calls.append(kw) or {"limits": {}})
    monkeypatch.setattr(limits, "current", lambda device, threads: {"limits": {}, "device": device})
    run.latency_shapes.update({("tiny", "fp32", "pytorch", "cpu"): [(4, 16, 0)],
                               ("tiny", "static_int8", "onnxruntime", "cpu"): [(4, 16, 0)]})
    assert run.compute_kernels("cpu") == ["fp32", "int8_onnxruntime"]
    run.machine_limits("cpu")
    assert run.machine_limits("cpu") == {"limits": {}, "device": "cpu"}
    assert calls == [{"device": "cpu", "threads": run.suite.measure.threads, "kernels": ["fp32", "int8_onnxruntime"]}]
    assert run.limits == {"cpu": {"limits": {}, "device": "cpu"}}
