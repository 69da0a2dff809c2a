"""Served answers are the variant's answers: in LoadGen's AccuracyOnly mode, a classifier served
behind the dynamic batcher (batches of 4, padded to their longest text) answers with the scores
the quality scorer records for it (to float rounding) and predicts exactly what it records, for
every batch-invariant method on the tiny model. (The tiny random model predicts one label for most
texts; the real MiniLM's are checked the same way in tests/integration/test_serving_real.py.)"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from quantbench import registry
from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.cells import Cell
from quantbench.quality import batching
from quantbench.quality.classification import predict
from quantbench.serving.inprocess import ClassifierSystem
from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_accuracy
from quantbench.serving.workload import text_samples

pytest.importorskip("mlperf_loadgen")

#: Batch-invariant classification variants (the registry marks none of them batch-sensitive).
INVARIANT = [("fp32", "pytorch"), ("fp32", "onnxruntime"), ("fp32", "openvino")]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


@pytest.fixture(scope="module")
def texts(tiny_data):
    import csv

    with open(tiny_data, encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)][:40]


def served_scores(variant, tokenizer, texts, folder) -> np.ndarray:
    system = ClassifierSystem(variant, text_samples(tokenizer, texts, 32), max_batch=4, max_queue_delay_s=0.005)
    try:
        served = run_accuracy(system, PointSpec("offline", 0.2, 10, len(texts), expected_qps=100, accuracy=True),
                              folder)
    finally:
        system.close()
    assert sorted(served) == list(range(len(texts)))  # every sample answered once
    return np.stack([np.frombuffer(served[i], dtype=np.float32) for i in range(len(texts))])


@pytest.mark.parametrize(("quant", "backend"), INVARIANT)
def test_served_predictions_equal_the_recorded_ones(quant, backend, tiny_model, tokenizer, texts, tmp_path,
                                                    isolated_cache):
    recipe = registry.recipe(quant, backend)
    if recipe.missing_dependency():
        pytest.skip(recipe.missing_dependency())
    assert recipe.batch_sensitive == ""
    cell = Cell("tiny", "toy", quant, backend, "cpu", 16, 32, per_variant=True)
    variant = recipe.load()(ModelSource("tiny", tiny_model, fingerprint="tiny-served"),
                            BuildSettings(device="cpu", threads=1, seq_len=32))
    try:
        import torch

        with torch.inference_mode():
            recorded = predict(variant, tokenizer, texts, cell, mode=batching.default_mode(cell), batch_size=16,
                               progress=False)
        served = served_scores(variant, tokenizer, texts, tmp_path)
    finally:
        variant.close()
    assert batching.default_mode(cell) == batching.LENGTH_SORTED
    np.testing.assert_allclose(served, recorded, rtol=1e-3, atol=1e-7)
    np.testing.assert_array_equal(served.argmax(axis=1), recorded.argmax(axis=1))
    # The texts' scores differ by far more than the tolerance: the comparison can tell them apart.
    assert np.ptp(recorded[:, 1] - recorded[:, 0]) > 1e-4


def test_the_batch_sensitive_method_is_the_one_left_out():
    sensitive = {(r.quant, r.backend) for r in registry.recipes() if r.batch_sensitive and "text-classification"
                 in (r.tasks or ("text-classification",))}
    assert ("dynamic_int8", "pytorch") in sensitive and not sensitive & set(INVARIANT)
    assert importlib.util.find_spec("mlperf_loadgen") is not None
