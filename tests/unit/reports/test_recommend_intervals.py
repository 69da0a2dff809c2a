"""The recommendation treats a difference inside a figure's 95 % interval as no difference.

Each pair of tests plants the same point estimates twice: once with an interval that reaches back
over the limit (the variant is kept, with a note) and once with one wholly beyond it (rejected, and
the reason cites the interval). Removing the interval logic fails the first kind (the variant is
rejected on its point estimate) and the second (the reason no longer cites the interval).
"""

from __future__ import annotations

from quantbench.reports.model import analyse
from quantbench.results import parse_run
from tests.run_factory import make_generation_run, make_run

PAIR = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"))
INT8 = "minilm · dynamic_int8 · pytorch · cpu"
LLM_PAIR = (("fp32", "pytorch"), ("dynamic_int8", "onnxruntime"))
LLM_INT8 = "tinyllm · dynamic_int8 · onnxruntime · cpu"


def set_extra(run: dict, *, quant: str, test: str, **values) -> dict:
    hits = [b for b in run["benchmarks"] if b["params"]["quant"] == quant and b["name"].startswith(test)]
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

def test_without_an_interval_a_shortfall_below_99pct_rejects_as_before():
    rec = recommendation(classifier())
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == "accuracy 0.8710 < 99% of fp32 0.8840"


def test_a_shortfall_inside_the_interval_is_no_difference():
    rec = recommendation(classifier(accuracy_delta_pts_ci95=[-2.9, 0.3]))
    assert rec.status == "ok" and rec.variant.variant.quant == "dynamic_int8"
    assert INT8 not in dict(rec.rejected)
    note = dict(rec.notes)[INT8]
    assert note == ("accuracy 0.8710 vs fp32 0.8840 (-1.30 pts against the 99% line at -0.88 pts) is inside the "
                    "interval [-2.90, +0.30] pts: no significant difference")
    assert note in rec.message


def test_a_shortfall_wholly_outside_the_interval_rejects_and_says_so():
    rec = recommendation(classifier(accuracy_delta_pts_ci95=[-2.0, -1.0]))  # the line is -0.884
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == (
        "accuracy 0.8710 < 99% of fp32 0.8840 (-1.30 pts against the 99% line at -0.88 pts), and significantly: "
        "the interval [-2.00, -1.00] pts lies wholly below the line")


def test_the_interval_is_judged_against_the_99pct_line_not_against_zero():
    # Upper bound -0.5 pts excludes 0 (a significant loss) but reaches the line at -0.884: kept.
    rec = recommendation(classifier(accuracy_delta_pts_ci95=[-2.1, -0.5]))
    assert rec.variant.variant.quant == "dynamic_int8"


# -- fairness guards --------------------------------------------------------------------------------

def fair(**int8_extra) -> dict:
    # fp32 dp 0.05 (run_factory); int8 0.08 > 0.05 + tolerance 0.02. Accuracy equal.
    run = make_run(variants=PAIR, batch_sizes=(8,), accuracy=0.9)
    return set_extra(run, quant="dynamic_int8", test="test_accuracy", dp_difference=0.08, **int8_extra)


def test_a_fairness_gap_inside_the_interval_is_no_difference():
    rec = recommendation(fair(dp_difference_ci95=[0.06, 0.10]))
    assert rec.variant.variant.quant == "dynamic_int8"
    assert dict(rec.notes)[INT8] == ("dp_difference 0.0800 > fp32 0.0500 + tolerance 0.02, but its interval "
                                     "[0.0600, 0.1000] reaches back within it: no significant difference")


def test_a_fairness_gap_wholly_outside_the_interval_rejects():
    rec = recommendation(fair(dp_difference_ci95=[0.075, 0.09]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[INT8] == ("dp_difference 0.0800 > fp32 0.0500 + tolerance 0.02, and significantly: "
                                        "its interval [0.0750, 0.0900] lies wholly above")


# -- the generation quality budget ------------------------------------------------------------------

def llm(**int8_extra) -> dict:
    run = make_generation_run(variants=LLM_PAIR, batch_sizes=(1,))
    # ORT dynamic int8 decodes fastest; put its KL just over the 0.05 budget, ΔPPL well within.
    return set_extra(run, quant="dynamic_int8", test="test_perplexity",
                     **{"kl_divergence": 0.06, "perplexity_delta_pct": 1.0, **int8_extra})


def test_over_budget_inside_the_interval_passes_with_a_note():
    rec = recommendation(llm(kl_divergence_ci95=[0.045, 0.075]))
    assert rec.variant.variant.quant == "dynamic_int8"
    assert dict(rec.notes)[LLM_INT8] == ("kl_divergence +0.06 > budget 0.05, but within budget thanks to its "
                                         "interval [+0.045, +0.075], which reaches the limit")
    assert "thanks to its interval" in rec.message


def test_over_budget_wholly_outside_the_interval_is_rejected():
    rec = recommendation(llm(kl_divergence_ci95=[0.055, 0.065]))
    assert rec.variant.variant.quant == "fp32"
    assert dict(rec.rejected)[LLM_INT8] == ("kl_divergence +0.06 > budget 0.05, and significantly: the interval "
                                            "[+0.055, +0.065] lies wholly beyond it")


def test_a_lower_limit_is_judged_on_the_upper_bound():
    def run(ci):
        data = llm(kl_divergence=0.01, top1_agreement=0.93, top1_agreement_ci95=ci)
        data["quantbench"]["suite"]["quality_budget"] = {"kl_divergence": 0.05, "top1_agreement_min": 0.95}
        return recommendation(data)

    assert run([0.91, 0.96]).variant.variant.quant == "dynamic_int8"
    rejected = run([0.90, 0.94])
    assert rejected.variant.variant.quant == "fp32"
    assert "top1_agreement +0.93 < budget 0.95, and significantly" in dict(rejected.rejected)[LLM_INT8]


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
