"""The recommendation judges each rule on the measured figure; the interval says how sure.

A variant whose point estimate breaks a rule is never recommended, even when its interval reaches back
inside (the reason says the shortfall is not significant, and that the rule is on the measured figure,
as MLPerf's 99 % rule is). A variant inside on its point estimate whose interval reaches past a limit
is recommended only after every variant whose intervals are inside too, and is flagged. Speed-ups carry
intervals; a tie on speed goes to quality. Each test plants point estimates and intervals: removing a
rule fails its test.
"""

from __future__ import annotations

import copy
import gzip
import json

from quantbench.reports.model import analyse
from quantbench.results import parse_run
from tests.conftest import REPO
from tests.run_factory import make_generation_run, make_run

PAIR = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"))
INT8 = "minilm · dynamic_int8 · pytorch · cpu"
LLM_PAIR = (("fp32", "pytorch"), ("dynamic_int8", "onnxruntime"))
LLM_INT8 = "tinyllm · dynamic_int8 · onnxruntime · cpu"


def set_extra(run: dict, *, quant: str, test: str, backend: str | None = None, **values) -> dict:
    hits = [b for b in run["benchmarks"] if b["params"]["quant"] == quant and b["name"].startswith(test)
            and (backend is None or b["params"]["backend"] == backend)]
    assert hits, (quant, test)
    for bench in hits:
        bench["extra_info"].update(values)
    return run


def recommendation(run: dict):
    [rec] = analyse(parse_run(run)).recommendations
    return rec


def classifier(**int8_extra) -> dict:
    # fp32 0.884, int8 0.871: -1.30 pts, below the 99 % line at -0.884 pts.
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy={"fp32": 0.884, "dynamic_int8": 0.871})
    return set_extra(run, quant="dynamic_int8", test="test_accuracy", **int8_extra)


# -- the 99 %-of-fp32 accuracy rule -----------------------------------------------------------------

def test_without_an_interval_a_shortfall_below_99pct_rejects():
    rec = recommendation(classifier())
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == "accuracy 0.8710 < 99% of fp32 0.8840 (-1.30 pts against the 99% line at -0.88 pts)"


def test_a_shortfall_whose_interval_reaches_back_is_still_rejected_and_says_why():
    rec = recommendation(classifier(accuracy_delta_pts_ci95=[-2.9, 0.3]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == (
        "accuracy 0.8710 < 99% of fp32 0.8840 (-1.30 pts against the 99% line at -0.88 pts); its interval "
        "[-2.90, +0.30] pts reaches back above the line: not a significant difference, but the rule is on the "
        "measured figure")


def test_a_shortfall_wholly_outside_the_interval_rejects_and_says_so():
    rec = recommendation(classifier(accuracy_delta_pts_ci95=[-2.0, -1.0]))  # the line is -0.884
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == (
        "accuracy 0.8710 < 99% of fp32 0.8840 (-1.30 pts against the 99% line at -0.88 pts), and significantly: "
        "the interval [-2.00, -1.00] pts lies wholly below the line")


def test_inside_on_the_point_but_not_on_the_interval_is_recommended_with_a_flag():
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy={"fp32": 0.884, "dynamic_int8": 0.880})
    set_extra(run, quant="dynamic_int8", test="test_accuracy", accuracy_delta_pts_ci95=[-1.5, 0.7])
    rec = recommendation(run)
    assert rec.variant.variant.quant == "dynamic_int8"
    note = dict(rec.notes)[INT8]
    assert note == ("uncertain: accuracy 0.8800 keeps 99% of fp32 0.8840 (-0.40 pts against the 99% line at "
                    "-0.88 pts), but its interval [-1.50, +0.70] pts reaches below the line")
    assert note in rec.message


def test_an_uncertain_variant_is_ranked_after_a_slower_one_whose_intervals_are_inside():
    three = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"), ("static_int8", "onnxruntime"))
    run = make_run(variants=three, batch_sizes=(8,), accuracy={"fp32": 0.884, "dynamic_int8": 0.883,
                                                                "static_int8": 0.880})
    set_extra(run, quant="static_int8", test="test_accuracy", accuracy_delta_pts_ci95=[-1.5, 0.7])
    set_extra(run, quant="dynamic_int8", test="test_accuracy", accuracy_delta_pts_ci95=[-0.5, 0.3])
    analysis = analyse(parse_run(run))
    speed = {s.variant.quant: s.speedup for s in analysis.variants}
    assert speed["static_int8"] > speed["dynamic_int8"] > 1  # run_factory: ORT static int8 fastest
    [rec] = analysis.recommendations
    assert rec.variant.variant.quant == "dynamic_int8"
    static = "minilm · static_int8 · onnxruntime · cpu"
    assert f"Ranked after it: {static}, faster but inside only on the point estimate" in rec.message


# -- fairness guards --------------------------------------------------------------------------------

def fair(**int8_extra) -> dict:
    # fp32 dp 0.05 (run_factory); int8 0.08 > 0.05 + tolerance 0.02. Accuracy equal.
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy=0.9)
    return set_extra(run, quant="dynamic_int8", test="test_accuracy", dp_difference=0.08, **int8_extra)


def test_a_fairness_gap_whose_interval_reaches_back_is_still_rejected():
    rec = recommendation(fair(dp_difference_ci95=[0.06, 0.10]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == ("dp_difference 0.0800 > fp32 0.0500 + tolerance 0.02; its interval "
                                        "[0.0600, 0.1000] reaches back within it: not a significant difference, "
                                        "but the rule is on the measured figure")


def test_a_fairness_gap_wholly_outside_the_interval_rejects():
    rec = recommendation(fair(dp_difference_ci95=[0.075, 0.09]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == ("dp_difference 0.0800 > fp32 0.0500 + tolerance 0.02, and significantly: "
                                        "its interval [0.0750, 0.0900] lies wholly above")


def test_a_fairness_figure_inside_is_not_flagged_by_its_unpaired_interval():
    # The interval is of the variant's own figure: fp32's has the same noise on the same texts.
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy=0.9)
    rec = recommendation(set_extra(run, quant="dynamic_int8", test="test_accuracy", dp_difference=0.065,
                                   dp_difference_ci95=[0.05, 0.09]))
    assert rec.variant.variant.quant == "dynamic_int8" and INT8 not in dict(rec.notes)
    assert "with its intervals inside too" in rec.message


# -- the generation quality budget ------------------------------------------------------------------

def llm(**int8_extra) -> dict:
    run = make_generation_run(variants=LLM_PAIR, batch_sizes=(1,))
    # ORT dynamic int8 decodes fastest; put its KL just over the 0.05 budget, ΔPPL well within.
    return set_extra(run, quant="dynamic_int8", test="test_perplexity",
                     **{"kl_divergence": 0.06, "perplexity_delta_pct": 1.0, **int8_extra})


def test_over_budget_is_rejected_even_when_its_interval_reaches_the_limit():
    rec = recommendation(llm(kl_divergence_ci95=[0.045, 0.075]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[LLM_INT8] == ("kl_divergence +0.06 > budget 0.05; its interval [+0.045, +0.075] "
                                            "reaches the limit: not a significant difference, but the rule is on "
                                            "the measured figure")


def test_over_budget_wholly_outside_the_interval_is_rejected():
    rec = recommendation(llm(kl_divergence_ci95=[0.055, 0.065]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[LLM_INT8] == ("kl_divergence +0.06 > budget 0.05, and significantly: the interval "
                                            "[+0.055, +0.065] lies wholly beyond it")


def test_within_budget_with_an_interval_beyond_it_is_flagged():
    rec = recommendation(llm(kl_divergence=0.04, kl_divergence_ci95=[0.03, 0.06]))
    assert rec.variant.variant.quant == "dynamic_int8"
    assert dict(rec.notes)[LLM_INT8] == ("uncertain: kl_divergence +0.04 is within budget 0.05, but its interval "
                                         "[+0.03, +0.06] reaches beyond it")


def test_a_lower_limit_is_judged_on_the_point_and_flagged_on_the_lower_bound():
    def run(value, ci):
        data = llm(kl_divergence=0.01, top1_agreement=value, top1_agreement_ci95=ci)
        data["quantbench"]["suite"]["quality_budget"] = {"kl_divergence": 0.05, "top1_agreement_min": 0.95}
        return recommendation(data)

    assert "top1_agreement +0.93 < budget 0.95; its interval" in dict(run(0.93, [0.91, 0.96]).rejected)[LLM_INT8]
    assert "top1_agreement +0.93 < budget 0.95, and significantly" in dict(run(0.93, [0.90, 0.94]).rejected)[LLM_INT8]
    flagged = run(0.96, [0.94, 0.97])
    assert flagged.variant.variant.quant == "dynamic_int8"
    assert dict(flagged.notes)[LLM_INT8].startswith("uncertain: top1_agreement +0.96 is within budget 0.95")


# -- speed-up intervals and ties --------------------------------------------------------------------

def test_a_speed_tie_goes_to_quality_and_says_so():
    three = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"), ("static_int8", "onnxruntime"))
    run = make_run(variants=three, batch_sizes=(8,), accuracy={"fp32": 0.884, "dynamic_int8": 0.883,
                                                                "static_int8": 0.880})
    for bench in run["benchmarks"]:
        if bench["name"].startswith("test_latency"):
            bench["extra_info"]["rounds_precision"] = 0.5  # wide: every speed-up overlaps
    [rec] = analyse(parse_run(run)).recommendations
    assert rec.variant.variant.quant == "dynamic_int8"  # slower, better accuracy
    assert "Tied on speed with minilm · static_int8 · onnxruntime · cpu" in rec.message
    assert "the tie goes to quality first: the best accuracy" in rec.message
    # Narrow intervals: no tie, the fastest wins.
    for bench in run["benchmarks"]:
        if bench["name"].startswith("test_latency"):
            bench["extra_info"]["rounds_precision"] = 0.01
    [rec] = analyse(parse_run(run)).recommendations
    assert rec.variant.variant.quant == "static_int8" and "Tied" not in rec.message
    assert "Decided by speed: the fastest variant inside every rule with its intervals inside too." in rec.message


def test_the_zen3_run_no_longer_recommends_a_variant_outside_its_budget():
    """b151086 on the Zen 3 VM recommended ONNX Runtime static int8 at accuracy 0.871 against fp32's 0.884
    (-1.30 pts, the 99 % line at -0.88) and flip rate 0.123 against 0.0879 + 0.02: both out on the point."""
    with gzip.open(REPO / "tests" / "data" / "zen3-default-b151086-a.json.gz", "rt") as handle:
        run = json.load(handle)
    analysis = analyse(parse_run(copy.deepcopy(run)))
    [rec] = analysis.recommendations
    static = "minilm · static_int8 · onnxruntime · cpu"
    assert rec.variant.variant.label != static
    assert dict(rec.rejected)[static].startswith("accuracy 0.8710 < 99% of fp32 0.8840")
    for summary in analysis.variants:  # whatever it recommends is inside every rule on its point estimate
        if summary.variant == rec.variant.variant:
            assert summary.accuracy >= 0.99 * 0.884


# -- the zero-shot floor ----------------------------------------------------------------------------

def floor_run(at_floor: bool) -> dict:
    run = llm(kl_divergence=0.01)
    # The probe says int8 flips far more than fp32 (0.02): but on zero-shot scores at the floor.
    set_extra(run, quant="dynamic_int8", test="test_accuracy", flip_rate=0.30, zero_shot_at_floor=at_floor)
    return run


def test_a_variant_at_the_zero_shot_floor_is_flagged_and_its_probe_figures_do_not_reject_it():
    rec = recommendation(floor_run(True))
    assert rec.variant.variant.quant == "dynamic_int8"
    note = dict(rec.notes)[LLM_INT8]
    assert note.startswith("flagged: zero-shot at the majority floor") and "not used to reject or rank" in note
    assert "fairness not judged (zero-shot at the majority floor)" in rec.message and note in rec.message
    # Control: the same flip rate without the flag rejects the variant.
    control = recommendation(floor_run(False))
    assert control.variant.variant.quant == "fp32"
    assert dict(control.rejected)[LLM_INT8].startswith("flip_rate 0.3000 > fp32 0.0200")


def test_an_fp32_reference_at_the_floor_sets_the_comparison_aside_too():
    run = floor_run(False)
    set_extra(run, quant="fp32", test="test_accuracy", zero_shot_at_floor=True)
    rec = recommendation(run)
    assert rec.variant.variant.quant == "dynamic_int8"
    assert "zero-shot at the majority floor (fp32's)" in dict(rec.notes)[LLM_INT8]


def test_the_floor_sets_aside_the_zero_shot_accuracy_budget_and_the_pareto_rank():
    data = floor_run(True)
    set_extra(data, quant="dynamic_int8", test="test_accuracy", accuracy_delta_pts=-20.0)
    data["quantbench"]["suite"]["quality_budget"] = {"kl_divergence": 0.05, "accuracy_delta_pts_min": -2.0}
    analysis = analyse(parse_run(data))
    [rec] = analysis.recommendations
    assert rec.variant.variant.quant == "dynamic_int8"
    int8 = next(s for s in analysis.variants if s.variant.quant == "dynamic_int8")
    assert not int8.on_pareto_front  # flagged, not ranked
    set_extra(data, quant="dynamic_int8", test="test_accuracy", zero_shot_at_floor=False, flip_rate=0.02)
    [control] = analyse(parse_run(data)).recommendations
    assert dict(control.rejected)[LLM_INT8].startswith("accuracy_delta_pts -20 < budget -2")


def test_a_floor_flag_on_a_classifier_record_changes_nothing():
    # The flag belongs to zero-shot scoring; a classifier's fairness is still judged.
    rec = recommendation(fair(zero_shot_at_floor=True))
    assert rec.variant.variant.quant == "fp32" and "dp_difference" in dict(rec.rejected)[INT8]
