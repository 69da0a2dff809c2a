"""The ``quantbench`` lm-eval model against lm-eval's own ``hf`` model, on a tiny random Llama.

Same checkpoint, same requests: log-likelihoods, greedy flags, rolling log-likelihoods and
greedy generations must match lm-eval's reference implementation, whatever the batching.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.errors import QuantbenchError
from tests.tiny import tiny_suite, write_suite

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

LONG = " ".join(["the movie was good and my friend is happy today"] * 3)  # past max_length below
PAIRS = [("good day", " my friend"), ("the movie was", " bad"), ("the movie was", " good"),
         ("", "she is happy today"), ("my sister is very ", "sad"), (LONG, " very happy"),
         ("tweet : the food was awful", " negative"), ("tweet : the food was awful", " positive")]
MAX_LENGTH = 16


@pytest.fixture
def suite_path(tmp_path, tiny_llama, tiny_data, isolated_cache):
    suite = tiny_suite(tiny_llama, tiny_data, quantization=["fp32", "dynamic_int8"],
                       backends=["pytorch", "onnxruntime", "openvino"])
    suite["models"] = [{"name": "tinylm", "source": "path", "path": str(tiny_llama), "task": "text-generation",
                        "max_seq_len": 48}]
    return write_suite(tmp_path / "suite.yaml", suite)


def ours(suite_path, max_length=MAX_LENGTH, **kwargs):
    from quantbench.lmeval.model import QuantbenchLM

    return QuantbenchLM(suite=str(suite_path), max_length=max_length, **kwargs)


def reference(tiny_llama, batch_size=4, max_length=MAX_LENGTH):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(tiny_llama), dtype="float32", device="cpu", batch_size=batch_size,
                max_length=max_length)


def requests(kind, args):
    return [Instance(kind, {}, a, i) for i, a in enumerate(args)]


def assert_same_loglikelihoods(mine, theirs):
    assert [greedy for _, greedy in mine] == [greedy for _, greedy in theirs]
    np.testing.assert_allclose([s for s, _ in mine], [s for s, _ in theirs], rtol=0, atol=2e-4)


def test_loglikelihoods_match_lm_evals_hf_model(suite_path, tiny_llama):
    model = ours(suite_path, batch_size=4)
    mine = model.loglikelihood(requests("loglikelihood", PAIRS))
    assert_same_loglikelihoods(mine, reference(tiny_llama).loglikelihood(requests("loglikelihood", PAIRS)))
    assert model.max_length == MAX_LENGTH and model.batch_size == 4
    assert "length-sorted" in model.get_model_info()["quality_scoring"]


def test_rolling_loglikelihoods_use_lm_evals_disjoint_windows(suite_path, tiny_llama):
    texts = [(LONG,), ("good day",), (LONG + " " + LONG,)]
    mine = ours(suite_path, batch_size=3).loglikelihood_rolling(requests("loglikelihood_rolling", texts))
    theirs = reference(tiny_llama).loglikelihood_rolling(requests("loglikelihood_rolling", texts))
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=5e-4)


@pytest.fixture
def eos_llama(tmp_path):
    """The tiny Llama with its EOS embedding (tied to the lm_head) scaled up: after "good day my" it
    makes two tokens, then EOS, which a served request (and lm-eval's hf model) stops at."""
    import torch
    from transformers import LlamaForCausalLM

    from tests.tiny import make_tiny_llama

    path = make_tiny_llama(tmp_path / "eos-llama", seed=1)
    model = LlamaForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.model.embed_tokens.weight[model.config.eos_token_id] *= 8.0
    model.save_pretrained(path, safe_serialization=True)
    return path


def test_greedy_generations_match_lm_evals_hf_model(tmp_path, eos_llama, tiny_data, isolated_cache):
    suite = tiny_suite(eos_llama, tiny_data)
    suite["models"] = [{"name": "tinylm", "source": "path", "path": str(eos_llama), "task": "text-generation"}]
    args = [("the movie was", {"until": ["sad"], "max_gen_toks": 12, "do_sample": False}),  # max_gen_toks
            ("good day my", {"until": ["\n\n"], "max_gen_toks": 40}),  # EOS after two tokens
            ("she is", {"until": ["is is is"], "max_gen_toks": 40, "temperature": 0.0}),  # until
            ("the movie was", {"until": ["sad"], "max_gen_toks": 40})]  # asks 16, 32, then 40 tokens
    mine = ours(write_suite(tmp_path / "s.yaml", suite), max_length=64).generate_until(requests("generate_until", args))
    theirs = reference(eos_llama, batch_size=1, max_length=64).generate_until(requests("generate_until", args))
    assert mine == theirs
    assert len(mine[0].split()) == 12 and len(mine[1].split()) == 2 and len(mine[3].split()) == 40
    assert "is is is" not in mine[2]


def test_length_sorted_batches_give_what_one_request_at_a_time_gives(suite_path):
    batched = ours(suite_path, batch_size=8).loglikelihood(requests("loglikelihood", PAIRS))
    alone = ours(suite_path, batch_size=1).loglikelihood(requests("loglikelihood", PAIRS))
    assert_same_loglikelihoods(batched, alone)


def test_a_batch_sensitive_method_is_scored_one_request_at_a_time_and_says_so(suite_path):
    model = ours(suite_path, quant="dynamic_int8", batch_size=16)
    assert model.batch_size == 1
    assert model.get_model_info()["quality_scoring"].startswith("each text alone (batch 1): activations are "
                                                                "quantized with one scale per tensor")
    assert model.variant.info.quantized_layers > 0  # it is the quantized variant, not fp32 under its name


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_other_runtimes_score_the_same_token_ids(suite_path, backend):
    pytest.importorskip({"onnxruntime": "optimum.onnxruntime", "openvino": "optimum.intel.openvino"}[backend])
    torch_fp32 = ours(suite_path).loglikelihood(requests("loglikelihood", PAIRS))
    model = ours(suite_path, backend=backend)
    assert model.variant.backend == backend
    assert_same_loglikelihoods(model.loglikelihood(requests("loglikelihood", PAIRS)), torch_fp32)


def test_sampling_is_refused_in_one_line(suite_path):
    args = [("the movie was", {"until": ["sad"], "do_sample": True, "temperature": 0.7})]
    with pytest.raises(QuantbenchError, match=r"^generate_until with do_sample=True: the quantbench model generates "
                                              r"greedily only"):
        ours(suite_path).generate_until(requests("generate_until", args))


def test_model_args_outside_the_suite_are_one_line(suite_path):
    with pytest.raises(QuantbenchError, match=r"^quantbench model: unknown model_args pretrained; known: suite"):
        ours(suite_path, pretrained="gpt2")
    with pytest.raises(QuantbenchError) as info:
        ours(suite_path, quant="nf4")
    assert str(info.value).startswith("suite 'tiny' has no variant quant=nf4 backend=pytorch device=cpu for model "
                                      "'tinylm'; its variants (quant/backend/device): fp32/pytorch/cpu, "
                                      "dynamic_int8/pytorch/cpu")
    with pytest.raises(QuantbenchError, match=r"^model 'other' is not a text-generation model of suite 'tiny'"):
        ours(suite_path, model="other")
