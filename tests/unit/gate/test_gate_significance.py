"""Quality rules with ``significance: true``: a change past the threshold fails only when it also
exceeds 1.96 x sqrt(se_baseline² + se_current²); without intervals, the threshold alone."""

from __future__ import annotations

import math

import pytest

from quantbench.errors import QuantbenchError
from quantbench.gate import gate_runs, load_policy
from quantbench.gate.result import FAIL, IMPROVEMENT, NOISE, OK, PASS, REGRESSION
from quantbench.gate.significance import Difference
from quantbench.results import parse_run
from tests.run_factory import make_generation_run, make_run

PAIR = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"))
ACCURACY_SIGNIFICANCE = {"rules": [{"metric": "accuracy", "threshold": "1pt", "significance": True}]}


def classifier(accuracy: float, ci: list[float] | None = None, **extra) -> dict:
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy={"fp32": 0.90, "dynamic_int8": accuracy})
    for bench in run["benchmarks"]:
        if bench["name"].startswith("test_accuracy") and bench["params"]["quant"] == "dynamic_int8":
            bench["extra_info"].update(extra, **({"accuracy_ci95": ci} if ci else {}))
    return run


def row_of(base: dict, cur: dict, metric: str, policy=None, quant: str = "dynamic_int8", test: str = "test_accuracy"):
    result = gate_runs(parse_run(base), parse_run(cur), policy=load_policy(policy))
    [row] = [r for r in result.rows if r.metric == metric and r.key[2] == quant and r.cell.startswith(test)]
    return row, result


# -- the test itself --------------------------------------------------------------------------------

def test_difference_arithmetic():
    d = Difference(-0.02, 0.0102, 0.0102)
    assert d.half_width == pytest.approx(1.96 * math.sqrt(2) * 0.0102)  # 0.0283
    assert not d.significant and d.p_value == pytest.approx(math.erfc(0.02 / (0.0102 * math.sqrt(2)) / math.sqrt(2)))
    assert Difference(-0.05, 0.0102, 0.0102).significant
    assert Difference(0.1, None, 0.01).missing == "baseline" and Difference(0.1, None, None).half_width is None
    assert Difference(0.0, 0.0, 0.0).p_value == 1.0 and Difference(0.01, 0.0, 0.0).significant


# -- classifier accuracy, with the rule turned on by a policy ---------------------------------------

def test_a_drop_past_the_threshold_but_inside_the_interval_is_within_noise():
    base, cur = classifier(0.90, [0.88, 0.92]), classifier(0.88, [0.86, 0.90])  # -2 pts, se 0.0102 a side
    row, _ = row_of(base, cur, "accuracy", ACCURACY_SIGNIFICANCE)
    assert (row.verdict, row.outcome) == (NOISE, OK)  # (f1_macro, without an interval, still fails)
    assert "inside the 95 % interval of the difference" in row.note and "not significant" in row.note
    assert row.ci == pytest.approx((-0.02 - 0.02828, -0.02 + 0.02828), abs=1e-4)
    # The control: the built-in rule (no significance on a classifier) fails the same drop.
    plain, _ = row_of(base, cur, "accuracy")
    assert (plain.verdict, plain.outcome) == (REGRESSION, FAIL)


def test_a_drop_past_the_threshold_and_the_interval_is_a_regression():
    base, cur = classifier(0.90, [0.88, 0.92]), classifier(0.85, [0.83, 0.87])  # -5 pts > 2.83
    row, result = row_of(base, cur, "accuracy", ACCURACY_SIGNIFICANCE)
    assert (row.verdict, row.outcome) == (REGRESSION, FAIL) and result.exit_code == 1
    assert row.p_value < 0.05 and row.ci[1] < 0 and row.note == ""
    line = next(line for line in result.render_table().splitlines() if "REGRESSION" in line)
    assert "-5.00 pts [-7.83 pts, -2.17 pts]" in line


def test_a_rise_inside_the_interval_is_no_improvement():
    row, _ = row_of(classifier(0.90, [0.88, 0.92]), classifier(0.92, [0.90, 0.94]), "accuracy",
                    ACCURACY_SIGNIFICANCE)
    assert row.verdict == NOISE
    row, _ = row_of(classifier(0.90, [0.88, 0.92]), classifier(0.95, [0.93, 0.97]), "accuracy",
                    ACCURACY_SIGNIFICANCE)
    assert row.verdict == IMPROVEMENT


@pytest.mark.parametrize("base_ci, cur_ci, missing", [(None, [0.86, 0.90], "baseline"),
                                                     ([0.88, 0.92], None, "current run"),
                                                     (None, None, "baseline and current run")])
def test_without_an_interval_on_either_side_the_threshold_decides_and_the_row_says_so(base_ci, cur_ci, missing):
    row, _ = row_of(classifier(0.90, base_ci), classifier(0.88, cur_ci), "accuracy", ACCURACY_SIGNIFICANCE)
    assert (row.verdict, row.outcome) == (REGRESSION, FAIL)
    assert row.note == f"no interval on the {missing}: threshold alone" and row.p_value is None
    within, _ = row_of(classifier(0.90, base_ci), classifier(0.895, cur_ci), "accuracy", ACCURACY_SIGNIFICANCE)
    assert within.verdict == PASS and "no interval" in within.note


def test_a_stated_standard_error_wins_and_relative_rules_get_a_relative_interval():
    def llm(ppl: float, se: float) -> dict:
        run = make_generation_run(variants=(("fp32", "pytorch"),), batch_sizes=(1,))
        for bench in run["benchmarks"]:
            if bench["name"].startswith("test_perplexity"):
                # The interval says se 30; the stated se wins.
                bench["extra_info"].update(perplexity=ppl, perplexity_se=se, perplexity_ci95=[ppl - 60, ppl + 60])
        return run

    policy = {"rules": [{"metric": "perplexity", "threshold": "5%", "significance": True}]}
    noisy, _ = row_of(llm(285.8, 9.1), llm(310.0, 9.9), "perplexity", policy, quant="fp32", test="test_perplexity")
    assert noisy.verdict == NOISE  # +8.5 % past 5 %, but 24.2 <= 1.96 x 13.4 = 26.4
    sure, _ = row_of(llm(285.8, 3.0), llm(310.0, 3.0), "perplexity", policy, quant="fp32", test="test_perplexity")
    assert sure.verdict == REGRESSION
    half = 1.96 * math.hypot(3.0, 3.0)
    assert sure.ci == pytest.approx(((24.2 - half) / 285.8, (24.2 + half) / 285.8))


# -- the policy key ---------------------------------------------------------------------------------

def test_significance_is_a_rule_key_for_figures_with_an_interval_only():
    policy = load_policy({"rules": [{"metric": "flip_rate", "threshold": 0.02, "significance": True,
                                     "where": {"task": "text-generation"}}]})
    assert policy.rules[-1].significance and policy.describe()["rules"][-1]["significance"] is True
    with pytest.raises(QuantbenchError, match=r"rules\[0\]\.significance: applies to figures with an interval"):
        load_policy({"rules": [{"metric": "latency_p50_ms", "threshold": "10%", "significance": True}]})
    with pytest.raises(QuantbenchError, match=r"rules\[0\]\.significance: 'yes' is not one of: true, false"):
        load_policy({"rules": [{"metric": "accuracy", "threshold": "1pt", "significance": "yes"}]})


def test_defaults_ask_for_significance_on_generation_zero_shot_figures_only():
    policy = load_policy(None)

    def rule(metric, **params):
        return policy.rule_for(metric=metric, test="test_accuracy", cell_id="x",
                               params={"model": "m", "quant": "int8", "backend": "pytorch", "device": "cpu", **params})

    for metric in ("accuracy", "balanced_accuracy", "f1_macro", "agreement_with_fp32", "dp_difference",
                   "eo_difference", "flip_rate"):
        on = rule(metric, task="text-generation")
        assert on.significance, metric
        off = rule(metric, batch_size=64, seq_len=128)
        assert not off.significance and (off.threshold, off.mode) == (on.threshold, on.mode), metric
    assert not policy.rule_for(metric="perplexity", test="test_perplexity", cell_id="x",
                               params={"task": "text-generation"}).significance


# -- the defaults on a generation run (zero-shot on 48 texts) ---------------------------------------

def zero_shot(accuracy: float, ci: list[float] | None) -> dict:
    run = make_generation_run(variants=PAIR, batch_sizes=(1,))
    for bench in run["benchmarks"]:
        if bench["name"].startswith("test_accuracy") and bench["params"]["quant"] == "dynamic_int8":
            bench["extra_info"].update(accuracy=accuracy, **({"accuracy_ci95": ci} if ci else {}))
    return run


def test_one_text_of_48_is_no_zero_shot_regression_by_default_but_a_collapse_is():
    # Wilson 95 % intervals for 38/48 and 37/48 correct.
    base = zero_shot(38 / 48, [0.658, 0.885])
    row, result = row_of(base, zero_shot(37 / 48, [0.636, 0.867]), "accuracy")
    assert row.verdict == NOISE and result.exit_code == 0
    row, result = row_of(base, zero_shot(24 / 48, [0.366, 0.634]), "accuracy")
    assert row.verdict == REGRESSION and result.exit_code == 1
    # Old runs without intervals: the threshold alone, as before, and the row says so.
    row, _ = row_of(zero_shot(38 / 48, None), zero_shot(37 / 48, None), "accuracy")
    assert row.verdict == REGRESSION and row.note.startswith("no interval")
