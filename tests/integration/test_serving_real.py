"""Served answers on the real classifier (the embedded fine-tuned MiniLM, real test tweets): behind the
dynamic batcher, in LoadGen's AccuracyOnly mode, every batch-invariant variant predicts exactly what
the quality scorer records for it. Slow: the first run fine-tunes the model (then it is cached)."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench import registry
from quantbench.cells import Cell
from quantbench.quality import batching
from quantbench.quality.classification import predict
from quantbench.serving.inprocess import ClassifierSystem
from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_accuracy
from quantbench.serving.workload import text_samples

pytestmark = pytest.mark.slow
pytest.importorskip("mlperf_loadgen")
TEXTS = 200


@pytest.fixture(scope="module")
def run():
    from quantbench.runner.context import RunContext
    from quantbench.suite import load_suite

    return RunContext(load_suite("default"))


@pytest.mark.parametrize(("quant", "backend"), [("fp32", "pytorch"), ("fp32", "onnxruntime")])
def test_the_served_minilm_predicts_what_its_quality_record_says(run, quant, backend, tmp_path):
    recipe = registry.recipe(quant, backend)
    if recipe.missing_dependency():
        pytest.skip(recipe.missing_dependency())
    cell = Cell("minilm", "tweets", quant, backend, "cpu", 64, 128, per_variant=True)
    variant = recipe.load()(run.source("minilm"), run.build_settings(cell))
    texts = run.splits.test.texts[:TEXTS]
    tokenizer = run.tokenizer("minilm")
    try:
        import torch

        with torch.inference_mode():
            recorded = predict(variant, tokenizer, texts, cell, mode=batching.default_mode(cell), batch_size=64,
                               progress=False)
        system = ClassifierSystem(variant, text_samples(tokenizer, texts, 128), max_batch=8, max_queue_delay_s=0.005)
        try:
            served = run_accuracy(system, PointSpec("offline", 0.2, 60, TEXTS, expected_qps=50, accuracy=True),
                                  tmp_path)
        finally:
            system.close()
    finally:
        variant.close()
    scores = np.stack([np.frombuffer(served[i], dtype=np.float32) for i in range(TEXTS)])
    assert set(recorded.argmax(axis=1).tolist()) == {0, 1}  # the real model predicts both labels
    np.testing.assert_array_equal(scores.argmax(axis=1), recorded.argmax(axis=1))
    np.testing.assert_allclose(scores, recorded, rtol=1e-3, atol=1e-4)
