"""The real thing for generation: the llm-full suite on the embedded SmolLM2-135M (real weights, real tweets).

Slow (the first run converts the GGUF once, about 25 s, then it is cached), so marked `slow`;
CI runs it with the rest. Narrowed to keep CI short: three PyTorch variants at batch 1, and lm-eval on
the first 500 of the 1,000 test tweets (about 35 s a variant on 2 cores, against 65 s for all of them;
docs/lm-eval.md has the full figures). The README's command runs the whole suite.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow
QUANTS = ("fp32", "dynamic_int8", "int8wo")
LM_EVAL_LIMIT = 500  # of the 1,000 test tweets; 354 of those 500 are negative


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llm")
    suite = yaml.safe_load((REPO / "src" / "quantbench" / "suites" / "llm-full.yaml").read_text())
    suite["quality"]["lm_eval"]["limit"] = LM_EVAL_LIMIT
    (folder / "llm-full.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    out = folder / "llm.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--suite", str(folder / "llm-full.yaml"),
                           "--quant", ",".join(QUANTS),
                           "--backend", "pytorch", "--batch-size", "1", "--benchmark-json", str(out), "-q",
                           "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def _by(run, test):
    return {b["params"]["quant"]: b["extra_info"] for b in run["benchmarks"] if b["name"].startswith(test)}


def test_llm_sweep_times_generation_of_every_variant_with_proof(llm_run):
    gen = _by(llm_run, "test_generation")
    assert set(gen) == set(QUANTS)
    for quant, extra in gen.items():
        assert extra["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert "dequantized" in extra["baseline_note"]
        assert extra["prompt_len"] == 64 and extra["new_tokens"] == 32
        assert 0 < extra["ttft_p50_ms"] < extra["latency_ms"]["p50"]
        assert extra["decode_tokens_per_s"] > 0 and extra["peak_rss_mb"] > 0
        # SmolLM2-135M: 134.5 M parameters with the tied embedding counted once.
        assert 130e6 < extra["param_count"] < 140e6
        assert (extra["quantized_layers"] > 0) == (quant != "fp32")
        if quant != "fp32":
            # 30 layers x 7 Linear each; lm_head (tied to the embedding) stays float by default.
            assert extra["quantized_layers"] == 210 and extra["quant_config"]["lm_head"] == "float"


def test_llm_sweep_scores_quality_against_fp32(llm_run):
    quality = _by(llm_run, "test_perplexity")
    fp32 = quality["fp32"]
    # Real English tweets under a real 135M model: a finite, plausible perplexity and bits per byte.
    assert 10 < fp32["perplexity"] < 2000 and 0.5 < fp32["bits_per_byte"] < 5
    assert fp32["kl_divergence"] == 0.0 and fp32["top1_agreement"] == 1.0
    # What the harness exists to surface (DESIGN.md): torch.ao dynamic int8 hurts this model far
    # more than torchao's int8 weight-only.
    assert quality["int8wo"]["kl_divergence"] < quality["dynamic_int8"]["kl_divergence"]
    assert quality["int8wo"]["top1_agreement"] > quality["dynamic_int8"]["top1_agreement"]
    assert abs(quality["int8wo"]["perplexity_delta_pct"]) < abs(quality["dynamic_int8"]["perplexity_delta_pct"])
    accuracy, fairness = _by(llm_run, "test_accuracy"), _by(llm_run, "test_fairness")
    assert set(accuracy) == set(fairness) == set(QUANTS)
    assert accuracy["fp32"]["agreement_with_fp32"] == 1.0 and 0 <= accuracy["int8wo"]["accuracy"] <= 1
    assert fairness["fp32"]["flip_rate_delta_vs_fp32"] == 0.0 and 0 <= fairness["dynamic_int8"]["flip_rate"] <= 1


def test_pytest_benchmark_compare_reads_the_llm_run(llm_run, tmp_path):
    path = tmp_path / "llm.json"
    path.write_text(json.dumps(llm_run))
    proc = subprocess.run([sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare", str(path)],
                          capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test_generation" in proc.stdout


def _independent_perplexity(model, tokenizer, texts: list[str], max_len: int) -> float:
    """Plain transformers, one text at a time from BOS, loss with labels: no harness code."""
    import math

    import torch

    nll, tokens = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = ([tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"])[:max_len]
            if len(ids) < 2:
                continue
            batch = torch.tensor([ids])
            nll += float(model(batch, labels=batch).loss) * (len(ids) - 1)
            tokens += len(ids) - 1
    return math.exp(nll / tokens)


def test_perplexity_recomputed_one_text_at_a_time_matches_the_record(llm_run):
    """Issue 19's check: the record is the variant's own figure, not the scoring batch's. The
    harness supplies only the data split and the dequantized checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from quantbench import data, models
    from quantbench.suite import load_suite

    suite = load_suite("llm-full")
    spec = suite.model("smollm2")
    splits = data.load_splits(suite.dataset, calibration_samples=suite.calibration.samples)
    source, _ = models.resolve(spec, splits)
    tokenizer = AutoTokenizer.from_pretrained(source.path)
    texts = splits.test.texts[:suite.quality.texts]
    model = AutoModelForCausalLM.from_pretrained(source.path, torch_dtype=torch.float32).eval()
    recorded = _by(llm_run, "test_perplexity")
    fp32 = _independent_perplexity(model, tokenizer, texts, spec.max_seq_len)
    assert recorded["fp32"]["perplexity"] == pytest.approx(fp32, rel=0.005)
    linear = {name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and name != "lm_head"}
    dynamic = torch.ao.quantization.quantize_dynamic(model, linear, dtype=torch.qint8)
    alone = _independent_perplexity(dynamic, tokenizer, texts, spec.max_seq_len)
    assert recorded["dynamic_int8"]["perplexity"] == pytest.approx(alone, rel=0.005)
    assert "each text alone" in recorded["dynamic_int8"]["quality_scoring"]


def test_batch_sensitivity_moves_per_tensor_dynamic_int8_and_not_fp32_or_weight_only(llm_run):
    quality = _by(llm_run, "test_perplexity")
    low, high = quality["dynamic_int8"]["perplexity_at_bs8_delta_pct_ci95"]
    assert low > 0 or high < 0, quality["dynamic_int8"]  # a real move, outside its interval
    for quant in ("fp32", "int8wo"):
        low, high = quality[quant]["perplexity_at_bs8_delta_pct_ci95"]
        assert low <= 0 <= high or abs(quality[quant]["perplexity_at_bs8_delta_pct"]) < 0.05, quality[quant]
    for quant in QUANTS:  # every figure carries its interval
        figures = quality[quant]
        for name in ("perplexity", "kl_divergence", "top1_agreement", "ppl_ratio", "delta_p_rms"):
            low, high = figures[f"{name}_ci95"]
            assert low <= figures[name] <= high, (quant, name)


def test_zero_shot_is_calibrated_and_reported_against_the_majority_floor(llm_run):
    accuracy = _by(llm_run, "test_accuracy")
    for quant, figures in accuracy.items():
        assert figures["zero_shot_calibration"].startswith("contextual calibration")
        assert "chat template" in figures["zero_shot_prompt"]
        assert 0 < figures["majority_rate"] < 1 and isinstance(figures["zero_shot_at_floor"], bool)
        assert figures["balanced_accuracy_ci95"][0] <= figures["balanced_accuracy"] <= figures["balanced_accuracy_ci95"][1]


def test_lm_eval_runs_the_shipped_task_on_every_variant(llm_run):
    pytest.importorskip("lm_eval")
    records = _by(llm_run, "test_lm_eval")
    assert sorted(records) == sorted(QUANTS)
    for extra in records.values():
        block = extra["lm_eval_results"]["results"]["tweets_sentiment"]
        assert extra["lm_eval.tweets_sentiment.acc"] == block["acc,none"]
        assert extra["lm_eval.tweets_sentiment.acc_se"] == block["acc_stderr,none"] > 0
        assert extra["lm_eval_results"]["n-samples"]["tweets_sentiment"] == {"original": 1000,
                                                                             "effective": LM_EVAL_LIMIT}
        assert extra["lm_eval.tweets_sentiment.acc_floor"] == pytest.approx(0.708)  # 354 of the 500 negative
    assert records["fp32"]["lm_eval.tweets_sentiment.acc_delta"] == 0.0
    # The task measures something: fp32's 95 % interval clears the majority floor, with an MCC above zero
    # (a constant answer scores 0, whatever the label mix), and torch.ao dynamic int8 (KL about 1.5 against
    # fp32) loses tweets that fp32 gets right, by McNemar's exact test (docs/lm-eval.md). On these 500
    # tweets: fp32 0.786, MCC 0.46; dynamic int8 lost 87 and gained 42, p 9e-5.
    assert records["fp32"]["lm_eval.tweets_sentiment.acc_at_floor"] is False
    assert records["fp32"]["lm_eval.tweets_sentiment.mcc"] > 0.2
    damaged = records["dynamic_int8"]
    assert damaged["lm_eval.tweets_sentiment.acc_delta_mcnemar_p"] < 0.01
    discordant = damaged["lm_eval.tweets_sentiment.acc_delta_discordant"]
    assert discordant["lost"] > discordant["gained"]
    assert records["dynamic_int8"]["quality_scoring"].startswith("each text alone (batch 1)")
    assert records["int8wo"]["quality_scoring"].startswith("length-sorted batches")
