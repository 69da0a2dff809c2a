"""lm-eval figures in the gate (significance-aware), the quality budget, the report tables and the cards."""

from __future__ import annotations

import copy
import json

import pytest

from quantbench.gate import gate_runs, load_policy
from quantbench.gate.result import FAIL, NOISE, OK, REGRESSION
from quantbench.reports.html import render_html
from quantbench.reports.model import analyse
from quantbench.reports.model_card import render_card
from quantbench.reports.write import write_reports
from quantbench.results import parse_run
from tests.run_factory import make_generation_run

LLM_PAIR = (("fp32", "pytorch"), ("dynamic_int8", "onnxruntime"))
INT8 = "tinyllm · dynamic_int8 · onnxruntime · cpu"
ACC = "lm_eval.tweets_sentiment.acc"


def lm_eval_bench(quant: str, backend: str, *, acc: float, se: float, delta: float, delta_ci: list[float],
                  more: dict | None = None) -> dict:
    cell_id = f"tinyllm-tweets-{quant}-{backend}-cpu"
    results = {"results": {"tweets_sentiment": {"acc,none": acc, "acc_stderr,none": se}},
               "n-samples": {"tweets_sentiment": {"original": 1000, "effective": 100}},
               "n-shot": {"tweets_sentiment": 0}}
    extra = {"cell_id": cell_id, "dataset": "tweets", ACC: acc, f"{ACC}_se": se, f"{ACC}_delta": delta,
             f"{ACC}_delta_ci95": delta_ci, "quality_scoring": "length-sorted batches", "lm_eval_results": results,
             **(more or {})}
    return {"group": "lm-eval", "name": f"test_lm_eval[{cell_id}]", "fullname": f"bench/test_lm_eval.py::test_lm_eval[{cell_id}]",
            "params": {"model": "tinyllm", "quant": quant, "backend": backend, "device": "cpu", "task": "text-generation"},
            "param": cell_id, "extra_info": extra, "options": {}, "stats": {"data": [5.0], "mean": 5.0}}


def llm_run(*, int8_acc=0.60, int8_se=0.049, delta=-0.04, delta_ci=(-0.07, -0.01), budget=None, fp32_more=None,
            int8_more=None) -> dict:
    run = make_generation_run(variants=LLM_PAIR, batch_sizes=(1,))
    for bench in run["benchmarks"]:  # int8 within the KL / ΔPPL budget: lm-eval's figures decide
        if bench["name"].startswith("test_perplexity") and bench["params"]["quant"] == "dynamic_int8":
            bench["extra_info"].update(kl_divergence=0.01, perplexity_delta_pct=1.0)
    run["benchmarks"] += [lm_eval_bench("fp32", "pytorch", acc=0.64, se=0.048, delta=0.0, delta_ci=[0.0, 0.0],
                                        more=fp32_more),
                          lm_eval_bench("dynamic_int8", "onnxruntime", acc=int8_acc, se=int8_se, delta=delta,
                                        delta_ci=list(delta_ci), more=int8_more)]
    if budget is not None:
        run["quantbench"]["suite"]["quality_budget"] = budget
    return run


def gate_row(base: dict, cur: dict, metric: str = ACC):
    result = gate_runs(parse_run(base), parse_run(cur), policy=load_policy(None))
    [row] = [r for r in result.rows if r.metric == metric and r.key[2] == "dynamic_int8"]
    return row


def test_the_gate_judges_lm_eval_figures_against_both_runs_stderr():
    base = llm_run()
    # -3 pts: past the 1-pt threshold, inside 1.96 x sqrt(0.049² + 0.05²) = 0.137: noise.
    row = gate_row(base, llm_run(int8_acc=0.57, int8_se=0.05))
    assert (row.verdict, row.outcome) == (NOISE, OK) and "inside the 95 % interval of the difference" in row.note
    # -30 pts: a collapse, significant.
    row = gate_row(base, llm_run(int8_acc=0.30, int8_se=0.046))
    assert (row.verdict, row.outcome) == (REGRESSION, FAIL)
    # The change against fp32 moves with fp32 and is not gated on its own.
    result = gate_runs(parse_run(base), parse_run(llm_run(delta=-0.5)), policy=load_policy(None))
    assert not [r for r in result.rows if r.metric == f"{ACC}_delta"]


def test_a_policy_rule_can_name_lm_eval_figures_by_glob():
    policy = load_policy({"rules": [{"metric": "lm_eval.*.acc", "threshold": "1pt"}]})
    [rule] = [r for r in policy.rules if r.origin.endswith("rules[0]")]
    assert rule.patterns == ("lm_eval.*.acc",) and rule.mode == "absolute" and not rule.significance
    result = gate_runs(parse_run(llm_run()), parse_run(llm_run(int8_acc=0.57, int8_se=0.05)), policy=policy)
    [row] = [r for r in result.rows if r.metric == ACC and r.key[2] == "dynamic_int8"]
    assert (row.verdict, row.outcome) == (REGRESSION, FAIL)  # this rule asks for no significance
    from quantbench.errors import QuantbenchError

    with pytest.raises(QuantbenchError, match=r"'lmeval\.\*' matches no metric; known metrics: .*or lm_eval\.<task>"):
        load_policy({"rules": [{"metric": "lmeval.*", "threshold": "1pt"}]})


def recommendation(run: dict):
    [rec] = analyse(parse_run(run)).recommendations
    return rec


def test_the_budget_rejects_an_lm_eval_drop_on_its_measured_figure_and_its_interval_says_how_sure():
    budget = {"kl_divergence": 0.05, "perplexity_delta_pct": 3.0, f"{ACC}_delta_min": -0.02}
    reaches = recommendation(llm_run(delta=-0.04, delta_ci=(-0.07, 0.0), budget=budget))
    assert reaches.variant.variant.quant == "fp32"
    assert dict(reaches.rejected)[INT8] == (f"{ACC}_delta -0.04 < budget -0.02; its interval [-0.07, +0] reaches the "
                                            "limit: not a significant difference, but the rule is on the measured figure")
    rejected = recommendation(llm_run(delta=-0.04, delta_ci=(-0.07, -0.025), budget=budget))
    assert rejected.variant.variant.quant == "fp32"
    assert dict(rejected.rejected)[INT8] == (f"{ACC}_delta -0.04 < budget -0.02, and significantly: the interval "
                                             "[-0.07, -0.025] lies wholly beyond it")
    flagged = recommendation(llm_run(delta=-0.01, delta_ci=(-0.03, 0.01), budget=budget))
    assert flagged.variant.variant.quant == "dynamic_int8"
    assert dict(flagged.notes)[INT8].startswith(f"uncertain: {ACC}_delta -0.01 is within budget -0.02")
    assert f"{ACC}_delta -0.010" in flagged.message
    # Without the key in the budget the same drop does not count.
    assert recommendation(llm_run(delta=-0.04, delta_ci=(-0.07, -0.025))).variant.variant.quant == "dynamic_int8"


def test_the_report_shows_acc_with_stderr_beside_the_speed_and_keeps_lm_evals_json(tmp_path):
    run = parse_run(llm_run())
    page = render_html(analyse(run))
    assert ">tweets_sentiment acc</th>" in page
    assert "0.600 ± 0.049" in page and "0.640 ± 0.048" in page  # main table and quality table
    written = write_reports(run, tmp_path)
    kept = json.loads((tmp_path / "lm_eval" / "tinyllm-tweets-dynamic_int8-onnxruntime-cpu.json").read_text())
    assert kept["results"]["tweets_sentiment"]["acc,none"] == 0.60
    assert "lm_eval/tinyllm-tweets-fp32-pytorch-cpu.json" in written


def test_the_card_lists_the_figures_against_fp32():
    analysis = analyse(parse_run(llm_run()))
    int8 = next(s for s in analysis.variants if s.variant.quant == "dynamic_int8")
    card = render_card(int8, analysis)
    assert f"| {ACC} | 0.600 ± 0.049 | 0.640 ± 0.048 | -0.0400 |" in card
    assert "tweets_sentiment: 100 documents, 0-shot" in card


def test_runs_without_lm_eval_render_as_before():
    run = make_generation_run(variants=LLM_PAIR, batch_sizes=(1,))
    before = copy.deepcopy(run)
    assert "tweets_sentiment" not in render_html(analyse(parse_run(run)))
    assert run == before


#: fp32 clearly above its floor, int8 collapsed onto the majority answer (a gain in acc here).
FLOORS = {"fp32_more": {f"{ACC}_floor": 0.5, f"{ACC}_at_floor": False},
          "int8_more": {f"{ACC}_floor": 0.687, f"{ACC}_at_floor": True, f"{ACC}_delta_mcnemar_p": 0.0213,
                        f"{ACC}_delta_discordant": {"gained": 9, "lost": 2}}}


def test_the_report_flags_an_accuracy_at_its_majority_floor_and_shows_mcnemar_beside_the_delta():
    page = render_html(analyse(parse_run(llm_run(int8_acc=0.69, int8_se=0.046, delta=0.05, delta_ci=(0.0, 0.1),
                                                 **FLOORS))))
    # The main table's cell and the quality section both carry the flag; fp32's says it is above.
    assert page.count("0.690 ± 0.046 (at the majority floor 0.687)") == 2
    assert "0.640 ± 0.048 (at" not in page
    assert "at the majority floor (0.687): flagged, not ranked" in page and "above the floor (0.500)" in page
    assert "McNemar p=0.021 (+9 / −2)" in page
    # Without the floor keys (older runs), nothing is added.
    plain = render_html(analyse(parse_run(llm_run(int8_acc=0.69, int8_se=0.046))))
    assert "at the majority floor 0" not in plain and " floor<" not in plain and "McNemar" not in plain


def test_the_card_flags_the_floor_and_gives_mcnemar():
    analysis = analyse(parse_run(llm_run(int8_acc=0.69, int8_se=0.046, delta=0.05, delta_ci=(0.0, 0.1), **FLOORS)))
    int8 = next(s for s in analysis.variants if s.variant.quant == "dynamic_int8")
    card = render_card(int8, analysis)
    assert "**Flagged: lm-eval accuracy at the majority floor** (lm_eval.tweets_sentiment.acc (majority rate 0.687))" \
        in card.replace("\\", "")
    assert "McNemar p=0.021 (+9 / −2)" in card
    fp32 = next(s for s in analysis.variants if s.variant.quant == "fp32")
    assert "**Flagged: lm-eval" not in render_card(fp32, analysis)


def test_an_lm_eval_budget_is_set_aside_when_fp32_itself_is_at_the_floor():
    budget = {"kl_divergence": 0.05, "perplexity_delta_pct": 3.0, f"{ACC}_delta_min": -0.02}
    at_floor = {f"{ACC}_floor": 0.687, f"{ACC}_at_floor": True}
    rec = recommendation(llm_run(delta=-0.04, delta_ci=(-0.07, -0.025), budget=budget, fp32_more=at_floor))
    assert rec.variant.variant.quant == "dynamic_int8"
    assert dict(rec.notes)[INT8] == (f"set aside: fp32's {ACC} is at its majority floor, so {ACC}_delta measures a "
                                     "shift in the lean towards one answer, not a loss of quality")
    # With fp32 above its floor the same drop rejects the variant, even when the variant is at its own.
    rec = recommendation(llm_run(delta=-0.04, delta_ci=(-0.07, -0.025), budget=budget, **FLOORS))
    assert rec.variant.variant.quant == "fp32" and INT8 in dict(rec.rejected)
