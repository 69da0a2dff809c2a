"""What a run shares: resolved once, handed down; limits measured again at most once per device."""

from __future__ import annotations

import pytest

from quantbench import efficiency
from quantbench.cells import Cell
from quantbench.run import RunContext
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


def test_limits_are_measured_again_at_most_once_per_device_and_run(run, monkeypatch):
    calls = []

    def fake(*, device, threads, refresh=False):
        calls.append(refresh)
        return {"limits": {}, "device": device}

    monkeypatch.setattr(efficiency, "machine_limits", fake)
    run.machine_limits("cpu")
    run.machine_limits("cpu")
    assert calls == [False]
    run.machine_limits("cpu", remeasure=True)
    run.machine_limits("cpu", remeasure=True)
    assert calls == [False, True]
    assert run.limits["cpu"]["remeasured_this_run"] is True
