"""Served generations are the variant's: through the static batcher in LoadGen's AccuracyOnly mode,
each runtime's greedy tokens for a prompt equal that variant's own ``generate`` on it (one query a
batch, so the very same computation), every query's first token comes before its answer, and every
answer holds the new tokens it asked for. serving.yaml serves the LLM through PyTorch and llama.cpp;
this covers the same in-process path for ONNX Runtime and OpenVINO on the tiny Llama."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench import registry
from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.serving.inprocess import GeneratorSystem
from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_accuracy
from quantbench.serving.record import token_agreement
from quantbench.serving.workload import Prompts

pytest.importorskip("mlperf_loadgen")

NEW_TOKENS, PROMPTS, PROMPT_LEN = 4, 6, 8


@pytest.mark.parametrize("backend", ["pytorch", "onnxruntime", "openvino"])
def test_served_tokens_equal_the_variant_s_own_generate(backend, tiny_llama, isolated_cache, tmp_path):
    recipe = registry.recipe("fp32", backend)
    if recipe.missing_dependency():
        pytest.skip(recipe.missing_dependency())
    variant = recipe.load()(ModelSource("tinylm", tiny_llama, fingerprint="tiny-served-generations"),
                            BuildSettings(device="cpu", threads=1, seq_len=16, task="text-generation"))
    # Token ids past the special ones, different for every prompt.
    ids = np.random.default_rng(0).integers(5, 30, size=(PROMPTS, PROMPT_LEN)).astype(np.int64)
    prompts = Prompts(ids=ids, new_tokens=NEW_TOKENS)
    system = GeneratorSystem(variant, prompts, max_batch=1, max_queue_delay_s=0.0)
    try:
        served = run_accuracy(system, PointSpec("offline", 0.2, 20, PROMPTS, expected_qps=20, token_latencies=True,
                                                accuracy=True), tmp_path / "accuracy")
        finished = list(system.finished)
        # The harness's own comparison, over every token (no stop ids): each prompt generated alone.
        agreement = token_agreement(variant, prompts, served, stop_ids=set())
    finally:
        system.close()
        variant.close()
    assert sorted(served) == list(range(PROMPTS))  # every prompt answered once
    assert agreement["identical"] == PROMPTS and agreement["differ"] == 0, agreement
    assert all(len(v) == NEW_TOKENS * 4 for v in served.values())  # int32 token ids
    assert len(finished) == PROMPTS
    for q in finished:
        assert q.tokens == NEW_TOKENS and len(q.token_times) == NEW_TOKENS
        assert q.arrival <= q.first <= q.done
    # The continuations differ between prompts: the comparison can tell a wrong answer apart.
    assert len({bytes(v) for v in served.values()}) > 1
