"""Every method builds a causal LM (a tiny random Llama): proof of quantization, lm_head, generate."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench import registry
from quantbench.backends.base import BuildSettings, CausalLMVariant, ModelSource
from quantbench.data import Split
from quantbench.task_kinds import ArchitectureMismatch

LINEARS_PER_LAYER = 7  # q, k, v, o, gate, up, down
LAYERS = 2


@pytest.fixture
def source(tiny_llama, isolated_cache):
    return ModelSource("tinylm", tiny_llama, fingerprint="tiny-llama-test")


def settings(**options):
    calibration = Split(texts=["good day my friend", "the movie was bad", "she is happy today"] * 3,
                        labels=np.zeros(9, dtype=np.int64))
    return BuildSettings(device="cpu", threads=1, options=options, calibration=calibration, seq_len=16,
                         task="text-generation")


def build(quant, backend, source, **options):
    return registry.recipe(quant, backend).load()(source, settings(**options))


def inputs(variant, batch=2):
    ids = np.tile(np.array([[2, 5, 6, 7, 8]]), (batch, 1))
    return variant.prepare({"input_ids": ids, "attention_mask": np.ones_like(ids)})


@pytest.mark.parametrize("quant, expected", [("fp32", 0), ("bf16", LAYERS * LINEARS_PER_LAYER + 1),
                                             ("dynamic_int8", LAYERS * LINEARS_PER_LAYER),
                                             ("int8wo", LAYERS * LINEARS_PER_LAYER),
                                             ("int8dq", LAYERS * LINEARS_PER_LAYER)])
def test_pytorch_methods_build_causal_lms_with_proof_and_float_lm_head(source, quant, expected):
    variant = build(quant, "pytorch", source)
    assert isinstance(variant, CausalLMVariant) and variant.backend == "pytorch"
    assert not variant.full_length_warmup  # a 2-token warm-up warms torch (measured)
    assert variant.info.quantized_layers == expected
    if quant != "fp32":
        config = variant.info.quant_config
        if quant != "bf16":
            assert config["lm_head"] == "float" and config["embeddings"] == "float"
    out = variant.generate(inputs(variant), new_tokens=3)
    assert tuple(out.shape) == (2, 3)  # exactly new_tokens per row, for every row
    logits = variant.to_numpy(variant.forward(inputs(variant, batch=1)))
    assert logits.shape == (1, 5, 37) and np.isfinite(logits).all()


@pytest.mark.parametrize("quant", ["dynamic_int8", "int8wo", "int8dq"])
def test_quantize_lm_head_is_an_option_and_is_recorded(source, quant):
    variant = build(quant, "pytorch", source, quantize_lm_head=True)
    assert variant.info.quantized_layers == LAYERS * LINEARS_PER_LAYER + 1
    assert variant.info.quant_config["lm_head"] == "quantized"
    # The tied embedding is never quantized with it.
    embedding = variant.model.model.embed_tokens.weight
    assert type(embedding).__name__ == "Parameter" and embedding.dtype.is_floating_point


def test_int8_logits_stay_close_to_fp32(source):
    fp32 = build("fp32", "pytorch", source)
    reference = fp32.to_numpy(fp32.forward(inputs(fp32, 1)))
    for quant in ("int8wo", "dynamic_int8"):
        variant = build(quant, "pytorch", source)
        logits = variant.to_numpy(variant.forward(inputs(variant, 1)))
        assert np.abs(logits - reference).max() < 0.1 * np.abs(reference).max() + 1e-3, quant


def padded(variant):
    """Two right-padded rows of different lengths (the zero-shot scorer's batches)."""
    ids = np.array([[2, 5, 6, 7, 8, 9], [2, 9, 8, 0, 0, 0]])
    mask = (np.arange(6) < np.array([[6], [3]])).astype(np.int64)
    return variant.prepare({"input_ids": ids, "attention_mask": mask})


@pytest.mark.parametrize("quant, backend", [("fp32", "pytorch"), ("int8wo", "pytorch"), ("fp32", "onnxruntime")])
def test_logits_at_reads_each_rows_own_position(source, quant, backend):
    # The torch path computes the lm_head at the batch's distinct positions only
    # (logits_to_keep); the ORT path indexes full logits. Both equal a full forward, row by row.
    if backend == "onnxruntime":
        pytest.importorskip("optimum.onnxruntime")
    variant = build(quant, backend, source)
    inputs = padded(variant)
    full = variant.to_numpy(variant.forward(inputs))
    last = variant.to_numpy(variant.logits_at(inputs, [5, 2]))
    assert last.shape == (2, 37)
    np.testing.assert_allclose(last, full[[0, 1], [5, 2]], rtol=1e-4, atol=1e-5)
    assert not np.allclose(last[1], full[1, 5], atol=1e-3)  # the padded tail is not what it reads


@pytest.mark.parametrize("quant", ["fp32", "dynamic_int8", "static_int8"])
def test_onnxruntime_builds_causal_lms_with_kv_cache(source, quant):
    pytest.importorskip("optimum.onnxruntime")
    variant = build(quant, "onnxruntime", source)
    assert variant.backend == "onnxruntime" and isinstance(variant, CausalLMVariant)
    config = variant.info.quant_config
    assert (variant.info.quantized_layers > 0) == (quant != "fp32")
    assert any(name.startswith("past_key_values") for name in variant.model.input_names)  # the KV cache
    assert variant.full_length_warmup  # its first round is slow at every new KV length (measured)
    if quant == "static_int8":
        assert config["calibration_rows"] == 9 and any(k.startswith("QDQ:") for k in config["onnx_ops"])
    assert tuple(variant.generate(inputs(variant), new_tokens=3).shape) == (2, 3)


def test_a_classifier_checkpoint_is_refused_for_generation(tiny_model, isolated_cache):
    from quantbench.models import check_task
    from quantbench.suite import ModelSpec

    spec = ModelSpec(name="clf", source="path", location=str(tiny_model), task="text-generation")
    with pytest.raises(ArchitectureMismatch, match="is a BertForSequenceClassification, which does not fit task "
                                                   "'text-generation'"):
        check_task(spec, tiny_model)
    with pytest.raises(ArchitectureMismatch, match="it fits task 'text-classification': set the model's task"):
        check_task(spec, tiny_model)


def test_a_bare_encoder_is_refused_with_what_would_fit_instead():
    from quantbench import task_kinds

    with pytest.raises(ArchitectureMismatch, match="is a BertModel.*no task fits a checkpoint without a task head: "
                                                   "fine-tune it with a classification head"):
        task_kinds.check_architectures(["BertModel"], task="text-classification", model="enc", path="/x")
