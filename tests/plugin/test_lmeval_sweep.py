"""quality.lm_eval end to end through pytester on a tiny random Llama: records, report, gate, budget."""

from __future__ import annotations

import json

import pytest

from quantbench.runner.context import RunContext
from quantbench.suite import load_suite
from tests.plugin.test_generation_sweep import llm_suite, run

pytest.importorskip("lm_eval")

LOCAL_TASK = """task: tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{text}}}}"
doc_to_choice: ["good", "bad"]
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
"""


@pytest.fixture
def local_tasks(tmp_path):
    """A folder with one local lm-eval task over six tiny documents (include_path)."""
    folder = tmp_path / "tasks"
    folder.mkdir()
    rows = [{"text": t, "label": i % 2} for i, t in enumerate(["the movie was", "my friend is", "the food was",
                                                               "she is very", "my day was", "he is"])]
    (folder / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "tiny_choice.yaml").write_text(LOCAL_TASK.format(data=folder / "docs.jsonl"))
    return folder


def lm_eval_suite(tiny_llama, tiny_data, local_tasks, **overrides):
    suite = llm_suite(tiny_llama, tiny_data, batch_sizes=[1])
    suite["dataset"] = {"name": "tweets", "source": "embedded", "max_samples": 40}
    suite["fairness"] = {"probe": False}
    suite["quality"]["lm_eval"] = {"tasks": ["tweets_sentiment", "tiny_choice"], "include_path": str(local_tasks),
                                   "limit": 8}
    suite["quality_budget"] = {"kl_divergence": 10.0, "lm_eval.tweets_sentiment.acc_delta_min": -1.0}
    suite.update(overrides)
    return suite


def test_every_variant_gets_lm_evals_figures_in_its_record_and_report(pytester, bench_dir, tiny_llama, tiny_data,
                                                               local_tasks, isolated_cache):
    report = pytester.path / "report"
    result, data = run(pytester, lm_eval_suite(tiny_llama, tiny_data, local_tasks), "--report-dir", str(report),
                       "-k", "test_lm_eval or test_perplexity")  # timed cells are other tests' business
    result.assert_outcomes(passed=2 * 2)
    records = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"] if b["name"].startswith("test_lm_eval")}
    labels = RunContext(load_suite(pytester.path / "suite.yaml")).splits.test.labels[:8].tolist()
    tweets_majority = max(labels.count(0), labels.count(1)) / len(labels)
    assert sorted(records) == ["dynamic_int8", "fp32"]
    for quant, extra in records.items():
        results = extra["lm_eval_results"]
        # The record's figures are the ones lm-eval's own results JSON holds.
        assert extra["lm_eval.tweets_sentiment.acc"] == results["results"]["tweets_sentiment"]["acc,none"]
        assert extra["lm_eval.tweets_sentiment.acc_se"] == results["results"]["tweets_sentiment"]["acc_stderr,none"]
        assert extra["lm_eval.tiny_choice.acc_norm"] == results["results"]["tiny_choice"]["acc_norm,none"]
        assert results["n-samples"]["tweets_sentiment"]["effective"] == 8
        assert results["n-samples"]["tiny_choice"]["effective"] == 6
        assert results["config"]["quantbench_variant"] == f"tinylm-tweets-{quant}-pytorch-cpu"
        assert extra["lm_eval_reference"] == "tinylm-tweets-fp32-pytorch-cpu" and extra["lm_eval_seconds"] > 0
    assert records["fp32"]["lm_eval.tweets_sentiment.acc_delta"] == 0.0
    quantized = records["dynamic_int8"]
    assert quantized["lm_eval.tweets_sentiment.acc_delta"] == pytest.approx(
        quantized["lm_eval.tweets_sentiment.acc"] - records["fp32"]["lm_eval.tweets_sentiment.acc"], abs=1e-6)
    # McNemar's exact test beside the delta: its discordant documents are the delta's numerator.
    pairs = quantized["lm_eval.tweets_sentiment.acc_delta_discordant"]
    assert (pairs["gained"] - pairs["lost"]) / 8 == pytest.approx(quantized["lm_eval.tweets_sentiment.acc_delta"], abs=1e-6)
    assert 0.0 < quantized["lm_eval.tweets_sentiment.acc_delta_mcnemar_p"] <= 1.0
    assert records["fp32"]["lm_eval.tweets_sentiment.acc_delta_mcnemar_p"] == 1.0
    # The majority floor beside every accuracy: the tweets' from mcc's (gold, prediction) pairs, the local
    # task's (three of each label) from its integer targets.
    for extra in records.values():
        assert "lm_eval.tweets_sentiment.mcc" in extra
        assert extra["lm_eval.tweets_sentiment.acc_floor"] == pytest.approx(tweets_majority, abs=1e-6)
        assert extra["lm_eval.tweets_sentiment.acc_at_floor"] == (
            extra["lm_eval.tweets_sentiment.acc"] - 1.959963984540054 * extra["lm_eval.tweets_sentiment.acc_se"]
            <= tweets_majority)
        assert extra["lm_eval.tiny_choice.acc_floor"] == 0.5 and extra["lm_eval.tiny_choice.acc_norm_floor"] == 0.5
    assert quantized["quality_scoring"].startswith("each text alone (batch 1)")
    assert records["fp32"]["quality_scoring"].startswith("length-sorted batches")
    # The report keeps lm-eval's JSON per variant and shows acc ± stderr in the main table and the cards.
    kept = json.loads((report / "lm_eval" / "tinylm-tweets-dynamic_int8-pytorch-cpu.json").read_text())
    assert kept == quantized["lm_eval_results"]
    page = (report / "index.html").read_text()
    assert "tweets_sentiment acc" in page and "lm_eval.tiny_choice.acc_norm_delta" in page
    card = (report / "model_cards" / "tinylm-dynamic_int8-pytorch-cpu.md").read_text()
    assert "| lm_eval.tweets_sentiment.acc |" in card and "tweets_sentiment: 8 documents, 0-shot" in card
    from huggingface_hub import ModelCard

    index = {(r.dataset_name, r.metric_type): r.metric_value for r in ModelCard(card).data.eval_results}
    assert index[("tweets_sentiment", "acc")] == quantized["lm_eval.tweets_sentiment.acc"]  # model-index


def test_a_suite_without_lm_eval_runs_no_lm_eval_cell(pytester, bench_dir, tiny_llama, tiny_data, isolated_cache):
    result, data = run(pytester, llm_suite(tiny_llama, tiny_data, quantization=["fp32"], batch_sizes=[1]),
                       "-k", "lm_eval")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED  # deselected, not a wall of skips
    result.stdout.fnmatch_lines(["*deselected*"])
