"""A text-generation sweep end to end, through pytester on a tiny random Llama: ids, JSON, quality."""

from __future__ import annotations

import json

import pytest

from tests.tiny import tiny_suite, write_suite


def llm_suite(model_dir, data_csv, **overrides):
    suite = tiny_suite(model_dir, data_csv, quantization=["fp32", "dynamic_int8"], batch_sizes=[1, 2])
    suite["models"] = [{"name": "tinylm", "source": "path", "path": str(model_dir), "task": "text-generation",
                        "max_seq_len": 48}]
    suite.update(prompt_lens=[8], new_tokens=[4], fairness={"probe": True},
                 quality={"texts": 12, "continuation_prompts": 4, "continuation_tokens": 4,
                             "continuation_prompt_tokens": 4, "zero_shot_texts": 20,
                          "probe_pairs": 10})
    suite.update(overrides)
    return suite


def run(pytester, suite, *args):
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "llm.json"
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "--benchmark-json", str(out),
                                           "-p", "no:cacheprovider", *args)
    return result, (json.loads(out.read_text()) if out.exists() else None)


def test_generation_sweep_records_prefill_decode_and_quality(pytester, bench_dir, tiny_llama, tiny_data,
                                                              isolated_cache):
    result, data = run(pytester, llm_suite(tiny_llama, tiny_data))
    result.assert_outcomes(passed=4 + 2 * 3)  # 2 variants x 2 batch sizes, and 3 per-variant tests each
    gen = {b["param"]: b for b in data["benchmarks"] if b["name"].startswith("test_generation")}
    assert sorted(gen) == sorted(f"tinylm-toy-{q}-pytorch-cpu-bs{bs}-p8-n4" for q in ("fp32", "dynamic_int8")
                                 for bs in (1, 2))
    for bench in gen.values():
        extra, rounds = bench["extra_info"], bench["stats"]["data"]
        assert bench["params"] == {"model": "tinylm", "quant": bench["params"]["quant"], "backend": "pytorch",
                                   "device": "cpu", "batch_size": bench["params"]["batch_size"], "prompt_len": 8,
                                   "new_tokens": 4, "task": "text-generation"}
        # Every latency keeps its raw rounds, one per pytest-benchmark round; TTFT also has the
        # prefill-only rounds after them (at least 3 by default, then until the TTFT converges).
        assert len(extra["tpot_ms"]["raw_s"]) == len(rounds) == extra["rounds"] == extra["ttft_ms"]["generate_rounds"]
        assert extra["ttft_ms"]["prefill_only_rounds"] == extra["prefill_rounds"] >= 3
        assert extra["rounds_stop"] in ("converged", "time cap", "round cap")
        assert extra["rounds_target"] == {"precision": 0.05, "confidence": 0.99, "on": "decode steps"}
        assert extra["ttft_rounds_stop"] in ("converged", "time cap", "round cap")
        if extra["ttft_rounds_stop"] == "converged":
            assert extra["ttft_rounds_precision"] <= 0.05
        assert extra["warmup_new_tokens"] == 2  # warm-up generates 2 of the 4 tokens
        assert len(extra["ttft_ms"]["raw_s"]) == len(rounds) + extra["prefill_rounds"]
        assert len(extra["tpot_ms"]["steps_s"]) == len(rounds) * (4 - 1)  # every decode step of every round
        assert extra["itl_ms"]["steps"] == len(rounds) * 3 and extra["itl_p50_ms"] > 0
        assert 0 < extra["ttft_p50_ms"] <= extra["latency_ms"]["p50"]
        assert extra["decode_tokens_per_s"] == pytest.approx(
            bench["params"]["batch_size"] / (extra["tpot_p50_ms"] / 1000), rel=1e-3)
        assert len(extra["reference_s"]) == len(rounds)
        assert extra["peak_rss_mb"] > 0 and extra["disk_size_mb"] > 0
        if bench["params"]["quant"] == "dynamic_int8":
            assert extra["quantized_layers"] > 0 and extra["quant_config"]["lm_head"] == "float"
    quality = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"]
               if b["name"].startswith("test_perplexity")}
    assert quality["fp32"]["kl_divergence"] == 0.0 and quality["fp32"]["perplexity_delta_pct"] == 0.0
    assert quality["dynamic_int8"]["kl_divergence"] > 0.0
    assert quality["dynamic_int8"]["fp32_perplexity"] == quality["fp32"]["perplexity"]
    for figures in quality.values():
        assert figures["n_texts"] == 12 and figures["n_tokens"] > 12 and figures["bits_per_byte"] > 0
    accuracy = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"]
                if b["name"].startswith("test_accuracy")}
    assert accuracy["fp32"]["n_examples"] == 20 and accuracy["fp32"]["scoring"].startswith("zero-shot")
    fairness = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"]
                if b["name"].startswith("test_fairness")}
    assert fairness["fp32"]["probe_sentences"] == 20 and fairness["fp32"]["flip_rate_delta_vs_fp32"] == 0.0
    assert data["quantbench"]["suite"]["tasks"] == {"tinylm": "text-generation"}


def test_a_causal_lm_in_a_classification_suite_is_one_clear_line(pytester, bench_dir, tiny_llama, tiny_data,
                                                                 isolated_cache):
    suite = tiny_suite(tiny_llama, tiny_data, quantization=["fp32"], batch_sizes=[1])
    result, _ = run(pytester, suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*quantbench: model 'tiny': checkpoint * is a LlamaForCausalLM, which does not "
                                 "fit task 'text-classification'*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_classifier_in_a_generation_suite_is_one_clear_line(pytester, bench_dir, tiny_model, tiny_data,
                                                              isolated_cache):
    result, _ = run(pytester, llm_suite(tiny_model, tiny_data, quantization=["fp32"], batch_sizes=[1]))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*quantbench: model 'tinylm': checkpoint * is a BertForSequenceClassification, "
                                 "which does not fit task 'text-generation'*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_model_with_nan_logits_fails_its_generation_cells_before_timing(pytester, bench_dir, tiny_data,
                                                                          isolated_cache, tmp_path):
    import torch
    from transformers import LlamaForCausalLM

    from tests.tiny import make_tiny_llama

    path = make_tiny_llama(tmp_path / "nan-llama")
    model = LlamaForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.model.norm.weight[0] = float("nan")  # every position's logits become NaN
    model.save_pretrained(path, safe_serialization=True)
    result, data = run(pytester, llm_suite(path, tiny_data, quantization=["fp32"], batch_sizes=[1]),
                       "-k", "test_generation")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tinylm-toy-fp32-pytorch-cpu-bs1-p8-n4: * logits are NaN or Inf; not timing this cell*"])
