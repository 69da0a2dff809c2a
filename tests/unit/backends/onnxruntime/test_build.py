"""ONNX Runtime variants on a tiny random classifier."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.models import fingerprint


@pytest.fixture
def source(tiny_model):
    return ModelSource(name="tiny", path=tiny_model, fingerprint=fingerprint(tiny_model))


@pytest.fixture
def encoding():
    return {"input_ids": np.array([[2, 5, 6, 7, 3, 0]]), "attention_mask": np.array([[1, 1, 1, 1, 1, 0]]),
            "token_type_ids": np.zeros((1, 6), dtype=np.int64)}


def build(builder, source, **options):
    return builder(source, BuildSettings(device="cpu", threads=1, options=options))


def test_ort_sessions_stop_spinning_between_runs(source, encoding, isolated_cache):
    """Idle ORT threads must not spin between rounds (they would slow the drift reference)."""
    pytest.importorskip("optimum.onnxruntime", reason="the onnx extra is not installed")
    from quantbench.backends.onnxruntime import build as ort_backend

    variant = build(ort_backend.build_fp32, source)
    options = variant.session.get_session_options()
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert variant.info.quant_config["session_config"] == {"session.force_spinning_stop": "1"}
    assert variant.logits(encoding).shape == (1, 2)
