"""Quality scoring does not depend on the batch for methods that batch it (a tiny random Llama).

Length-sorted, padded batches are the default for every method the registry does not mark
batch-sensitive; these tests are the evidence that it may: fp32, bf16, weight-only int8 and
per-token dynamic int8 give the same perplexity that way as one text at a time. Per-tensor
dynamic int8 does not, which is why it is scored alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantbench import registry
from quantbench.backends.base import BuildSettings, ModelSource
from quantbench.quality import batching
from quantbench.quality.lm_scoring import score_texts

TEXTS = ["good day my friend", "the movie was bad and she is sad today", "happy", "he hates the food",
         "my sister loves the movie very much today", "bad", "the day was great", "awful poor sad movie"]


class _Tokenizer:
    """Word-level ids inside the tiny Llama's vocabulary; BOS is 2, as its config says."""

    bos_token_id = 2

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [4 + (sum(map(ord, w)) % 25) for w in text.split()]}


@pytest.fixture
def source(tiny_llama, isolated_cache):
    return ModelSource("tinylm", tiny_llama, fingerprint="tiny-llama-batching")


def _variant(quant: str, source):
    settings = BuildSettings(device="cpu", threads=1, seq_len=32, task="text-generation")
    return registry.recipe(quant, "pytorch").load()(source, settings)


def _nll(variant, mode: str, batch_size: int = 4) -> np.ndarray:
    return score_texts(variant, _Tokenizer(), TEXTS, batch_size=batch_size, max_len=32, mode=mode).token_nll


@pytest.mark.parametrize("quant", ["fp32", "bf16", "int8wo", "int8dq"])
def test_batched_scoring_equals_one_text_at_a_time_for_methods_that_batch(source, quant):
    if quant in ("int8wo", "int8dq"):
        pytest.importorskip("torchao", reason="torchao methods need the torchao extra")
    variant = _variant(quant, source)
    assert batching.default_mode(_cell(quant)) == batching.LENGTH_SORTED
    alone = _nll(variant, batching.ALONE)
    tolerance = 2e-2 if quant == "bf16" else 1e-4  # bf16 rounds each GEMM's output: its own noise
    np.testing.assert_allclose(_nll(variant, batching.LENGTH_SORTED), alone, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(_nll(variant, batching.SERVED), alone, rtol=tolerance, atol=tolerance)


def test_per_tensor_dynamic_int8_moves_with_the_batch_so_it_is_scored_alone(source):
    variant = _variant("dynamic_int8", source)
    assert batching.default_mode(_cell("dynamic_int8")) == batching.ALONE
    alone = _nll(variant, batching.ALONE)
    served = _nll(variant, batching.SERVED, batch_size=8)
    assert np.abs(served - alone).max() > 1e-3  # padding and neighbours entered the activation scale


def _cell(quant: str):
    from quantbench.cells import Cell

    return Cell("tinylm", "d", quant, "pytorch", "cpu", 4, 32, task="text-generation")
