"""ONNX Runtime variants on a tiny random classifier."""

from __future__ import annotations

import pytest

from tests.unit.backends.conftest import build


def test_ort_sessions_stop_spinning_between_runs(source, encoding, isolated_cache):
    """Idle ORT threads must not spin between rounds (they would slow the drift reference)."""
    pytest.importorskip("optimum.onnxruntime", reason="the onnx extra is not installed")
    from quantbench.backends.onnxruntime import build as ort_backend

    variant = build(ort_backend.build_fp32, source)
    options = variant.session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert variant.info.quant_config["session_config"] == {"session.force_spinning_stop": "1"}
    assert variant.logits(encoding).shape == (1, 2)
