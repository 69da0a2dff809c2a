"""Reports and gates on generation runs: charts, recommendation by quality budget, planted regressions."""

from __future__ import annotations

import json

import pytest

from quantbench.gate import gate_runs
from quantbench.gate.policy import load_policy
from quantbench.reports import write_reports
from quantbench.reports.model import analyse
from quantbench.results import parse_run
from tests.run_factory import make_generation_run


def gate(baseline: dict, current: dict):
    return gate_runs(parse_run(baseline), parse_run(current), policy=load_policy(None))


def failed_metrics(result) -> set[tuple[str, str]]:
    return {(row.cell.split("[")[0], row.metric) for row in result.rows if row.outcome == "fail"}


def test_a_generation_run_gated_against_itself_passes():
    run = make_generation_run(seed=1)
    assert gate(run, run).exit_code == 0


def test_a_planted_2x_decode_slowdown_fails_on_tpot_and_decode_tokens_per_s():
    baseline = make_generation_run(seed=1)
    current = make_generation_run(seed=2, decode_scale={"int8wo": 2.0})
    result = gate(baseline, current)
    assert result.exit_code == 1
    failed = {row for row in result.rows if row.outcome == "fail"}
    assert {r.metric for r in failed} >= {"tpot_p50_ms", "decode_tokens_per_s"}
    assert all("int8wo" in r.cell for r in failed)  # nothing else moved
    # TTFT did not move: it is judged on its own rounds, not on the whole generate call.
    assert not any(r.metric == "ttft_p50_ms" for r in failed)


def test_a_planted_10pct_perplexity_rise_fails():
    result = gate(make_generation_run(seed=1), make_generation_run(seed=1, perplexity_scale={"nf4": 1.10}))
    assert result.exit_code == 1
    assert {(r.cell.split("[")[0], r.metric) for r in result.rows if r.outcome == "fail"} == {
        ("test_perplexity", "perplexity")}


def test_a_mixed_run_gates_both_tasks():
    baseline = make_generation_run(seed=3, with_classification=True)
    assert gate(baseline, baseline).exit_code == 0
    current = make_generation_run(seed=3, with_classification=True, decode_scale={"fp32": 2.0})
    tests = {r.cell.split("[")[0] for r in gate(baseline, current).rows if r.outcome == "fail"}
    assert tests == {"test_generation"}


def test_recommendation_uses_the_quality_budget_and_decode_speed():
    analysis = analyse(parse_run(make_generation_run(seed=4)))
    [rec] = analysis.recommendations
    # dynamic_int8 on pytorch decodes fastest but its KL (1.79) is far over budget; ORT dynamic
    # int8 (KL 0.08) too; fp32 on ORT is the fastest within budget.
    assert rec.status == "ok" and (rec.variant.variant.quant, rec.variant.variant.backend) == ("fp32", "onnxruntime")
    rejected = dict(rec.rejected)
    assert "kl_divergence +1.79 > budget 0.05" in rejected["tinyllm · dynamic_int8 · pytorch · cpu"]
    assert "decode speed" in rec.message and "KL" in rec.message


def test_report_draws_generation_charts_and_cards_round_trip(tmp_path):
    from huggingface_hub import ModelCard
    from huggingface_hub.repocard_data import model_index_to_eval_results

    path = tmp_path / "llm.json"
    path.write_text(json.dumps(make_generation_run(seed=5)))
    written = write_reports(path, tmp_path / "report")
    html = (tmp_path / "report" / "index.html").read_text()
    for chart in ("ttft-0", "decode-0", "generation-pareto"):
        assert f'data-chart="{chart}"' in html
    assert "fp32 = test weights dequantized" in html
    cards = [p for name, p in written.items() if str(name).startswith("model_cards/")]
    assert len(cards) == 6
    for card_path in cards:
        card = ModelCard.load(card_path)
        assert card.data.pipeline_tag == "text-generation"
        _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
        types = {r.metric_type for r in results}
        assert {"perplexity", "kl_divergence", "bits_per_byte", "accuracy"} <= types
    smaller = json.loads((tmp_path / "report" / "github-action-benchmark-smaller.json").read_text())
    bigger = json.loads((tmp_path / "report" / "github-action-benchmark-bigger.json").read_text())
    assert any("tpot_p50_ms" in e["name"] for e in smaller) and any("perplexity" in e["name"] for e in smaller)
    assert any("decode_tokens_per_s" in e["name"] for e in bigger)


def test_five_rounds_are_enough_for_decode_because_every_step_is_a_sample():
    baseline = make_generation_run(seed=8, rounds=5)
    current = make_generation_run(seed=9, rounds=5, decode_scale={"int8wo": 2.0})
    failed = {r.metric for r in gate(baseline, current).rows if r.outcome == "fail"}
    assert {"tpot_p50_ms", "decode_tokens_per_s"} <= failed
    # The control: with per-round times only, 5 rounds a side give no 99 % interval of the shift,
    # so the same planted slowdown is judged within noise. This is why steps are recorded.
    without = gate(make_generation_run(seed=8, rounds=5, steps=False),
                   make_generation_run(seed=9, rounds=5, decode_scale={"int8wo": 2.0}, steps=False))
    assert not any(r.outcome == "fail" and r.metric == "tpot_p50_ms" for r in without.rows)


@pytest.mark.parametrize("rounds", [2, 3])
def test_two_rounds_with_prefill_rounds_gate_prefill_and_decode_without_noise_rows(rounds):
    # suites/llm.yaml: at least 2 generate rounds (3 or 4 at batch 1); prefill-only rounds continue
    # past measure.prefill_rounds until the time to first token converges (here: 12 samples a side).
    llm = dict(rounds=rounds, prefill_rounds=10)
    baseline = make_generation_run(seed=10, **llm)
    itself = gate(baseline, baseline)
    assert itself.exit_code == 0
    # The whole-generate latency (2 or 3 rounds) is not gated: TTFT and TPOT cover it. No row says
    # "insufficient data" for a generation cell.
    assert not any(r.metric in ("latency_p50_ms", "total_tokens_per_s") and "test_generation" in r.cell
                   for r in itself.rows)
    assert not any(r.outcome == "warn" and "test_generation" in r.cell for r in itself.rows)
    slower_prefill = make_generation_run(seed=11, prefill_scale={"nf4": 2.0}, **llm)
    failed = {(r.cell.split("[")[1].split("-")[2], r.metric) for r in gate(baseline, slower_prefill).rows
              if r.outcome == "fail"}
    assert ("nf4", "ttft_p50_ms") in failed and {q for q, _ in failed} == {"nf4"}
    slower_decode = make_generation_run(seed=11, decode_scale={"int8wo": 2.0}, **llm)
    assert ("int8wo", "tpot_p50_ms") in {(r.cell.split("[")[1].split("-")[2], r.metric)
                                          for r in gate(baseline, slower_decode).rows if r.outcome == "fail"}
    # Too few prefill samples (2 or 3 rounds and 4 prefill-only rounds) cannot resolve the threshold even
    # against the run itself: that is said (unresolved), not passed.
    few = make_generation_run(seed=10, rounds=rounds, prefill_rounds=4)
    assert {r.verdict for r in gate(few, few).rows if r.metric == "ttft_p50_ms"} <= {"unresolved", "pass"}
    # The control: without the prefill-only rounds, 2 or 3 TTFT samples a side cannot show the slowdown.
    alone = gate(make_generation_run(seed=10, rounds=rounds),
                 make_generation_run(seed=11, rounds=rounds, prefill_scale={"nf4": 2.0}))
    assert not any(r.outcome == "fail" and r.metric == "ttft_p50_ms" for r in alone.rows)
