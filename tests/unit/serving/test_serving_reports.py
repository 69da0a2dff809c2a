"""Serving in the gate and the reports: capacity gated bigger-is-better with drift correction, the
capacity table and load charts, recommend_by capacity, and the two report fixes."""

from __future__ import annotations

import re

import pytest

from quantbench.gate import gate_runs, load_policy
from quantbench.gate.result import IMPROVEMENT, NOISE, PASS, REGRESSION
from quantbench.reports import charts, write_reports
from quantbench.reports.html import build_charts
from quantbench.reports.model import analyse, pareto_front
from quantbench.results import METRICS, parse_run
from tests.run_factory import make_generation_run
from tests.unit.serving.factory import serving_run

VARIANTS = {("fp32", "pytorch"): 40.0, ("dynamic_int8", "onnxruntime"): 120.0, ("static_int8", "onnxruntime"): 150.0}


def capacity_rows(result):
    return {row.key[2]: row for row in result.rows if row.metric == "capacity_qps"}


def gate(base, cur):
    return gate_runs(parse_run(base), parse_run(cur), policy=load_policy(None))


def test_capacity_is_a_bigger_is_better_serving_metric():
    assert METRICS["capacity_qps"].better == "higher" and METRICS["capacity_qps"].kind == "serving"


def test_a_capacity_drop_on_the_same_machine_is_a_regression_and_a_rise_an_improvement():
    base = serving_run(VARIANTS)
    cur = serving_run({**VARIANTS, ("dynamic_int8", "onnxruntime"): 80.0, ("static_int8", "onnxruntime"): 200.0})
    rows = capacity_rows(gate(base, cur))
    assert rows["dynamic_int8"].verdict == REGRESSION and rows["static_int8"].verdict == IMPROVEMENT
    assert rows["fp32"].verdict == PASS


def test_a_slower_machine_is_divided_out_of_capacity():
    # Every capacity halved, and the drift reference ran 2x slower: the machine, not the variants.
    base = serving_run(VARIANTS, reference_s=0.010)
    cur = serving_run({k: v * 0.50 for k, v in VARIANTS.items()}, reference_s=0.020)
    result = gate(base, cur)
    rows = capacity_rows(result)
    assert {r.verdict for r in rows.values()} == {PASS}
    assert all(r.drift == pytest.approx(2.0) for r in rows.values())
    assert result.exit_code == 0
    # The same fall with no slower machine is three regressions.
    assert {r.verdict for r in capacity_rows(gate(base, serving_run({k: v * 0.50 for k, v in VARIANTS.items()})))
            .values()} == {REGRESSION}


def test_a_capacity_change_is_judged_against_the_capacities_intervals():
    """Past the threshold and outside the 95 % interval of the difference: a regression; past the threshold
    but inside it: noise, said so. The intervals are each search's fit at the knee."""
    base = serving_run(VARIANTS, ci_share=0.30)
    inside = serving_run({**VARIANTS, ("dynamic_int8", "onnxruntime"): 78.0}, ci_share=0.30)  # -35 %
    row = capacity_rows(gate(base, inside))["dynamic_int8"]
    assert row.verdict == NOISE and "not significant" in row.note
    outside = serving_run({**VARIANTS, ("dynamic_int8", "onnxruntime"): 60.0}, ci_share=0.30)  # -50 %
    row = capacity_rows(gate(base, outside))["dynamic_int8"]
    assert row.verdict == REGRESSION and row.ci[1] < 0
    # Without intervals (records from before the fit) the threshold alone decides, and the row says so.
    plain = capacity_rows(gate(serving_run(VARIANTS), serving_run({**VARIANTS, ("dynamic_int8", "onnxruntime"): 78.0})))
    assert plain["dynamic_int8"].verdict == REGRESSION and "threshold alone" in plain["dynamic_int8"].note


def test_an_llm_capacity_is_held_to_the_threshold_its_measured_spread_allows():
    # Runs of one commit moved the LLM's capacities by 3.7 % (sd, 3 llama-server processes a run) and the
    # classifier's by 6.7 %: 20 % and 30 % are 3 sd of a clean pair's change (docs/serving.md, "How
    # repeatable"). A 15 % drop passes either; past its threshold, a drop fails.
    llm = {("fp32", "llamacpp"): 10.0, ("q8_0", "llamacpp"): 10.0}
    base = serving_run(llm, task="text-generation", ci_share=0.05)
    cur = serving_run({("fp32", "llamacpp"): 8.5, ("q8_0", "llamacpp"): 7.5}, task="text-generation", ci_share=0.05)
    rows = capacity_rows(gate(base, cur))
    assert rows["fp32"].threshold == pytest.approx(0.20) and rows["fp32"].verdict != REGRESSION
    assert rows["q8_0"].verdict == REGRESSION
    classifier = capacity_rows(gate(serving_run(VARIANTS, ci_share=0.05),
                                    serving_run({**VARIANTS, ("fp32", "pytorch"): 34.0,
                                                 ("dynamic_int8", "onnxruntime"): 78.0}, ci_share=0.05)))
    assert classifier["fp32"].threshold == pytest.approx(0.30) and classifier["fp32"].verdict != REGRESSION
    assert classifier["dynamic_int8"].verdict == REGRESSION


def test_capacities_whose_intervals_overlap_are_a_tie_that_quality_breaks():
    accuracy = {"fp32": 0.90, "dynamic_int8": 0.90, "static_int8": 0.895}
    tied = {**VARIANTS, ("dynamic_int8", "onnxruntime"): 140.0}  # 140 [112, 168] against 150 [120, 180]
    [rec] = analyse(parse_run(serving_run(tied, accuracy=accuracy, ci_share=0.20))).recommendations
    assert rec.variant.variant.quant == "dynamic_int8"  # the better accuracy, not the higher capacity
    assert "Tied on capacity with minilm · static_int8 · onnxruntime · cpu 150 QPS [120, 180]" in rec.message
    assert "the tie goes to quality first" in rec.message
    # Apart by more than their intervals: capacity decides.
    [rec] = analyse(parse_run(serving_run(tied, accuracy=accuracy, ci_share=0.02))).recommendations
    assert rec.variant.variant.quant == "static_int8" and "Tied" not in rec.message


def test_recommend_by_capacity_ranks_by_capacity_within_the_accuracy_rule():
    accuracy = {"fp32": 0.90, "dynamic_int8": 0.895, "static_int8": 0.80}
    analysis = analyse(parse_run(serving_run(VARIANTS, accuracy=accuracy)))
    [rec] = analysis.recommendations
    assert analysis.recommend_by == "capacity"
    # static int8 serves the most but loses accuracy; dynamic int8 is next and keeps it.
    assert rec.variant.variant.quant == "dynamic_int8"
    assert rec.message.startswith("use dynamic_int8 on onnxruntime: serves 120 QPS at p99 ≤ 100 ms (max batch 4)")
    assert any(label.startswith("minilm · static_int8") and "accuracy" in why for label, why in rec.rejected)


def test_a_variant_with_no_capacity_is_ruled_out_with_the_one_line_reason():
    analysis = analyse(parse_run(serving_run({**VARIANTS, ("static_int8", "onnxruntime"): None},
                                             accuracy={"fp32": 0.9, "dynamic_int8": 0.9, "static_int8": 0.9})))
    [rec] = analysis.recommendations
    assert rec.variant.variant.quant == "dynamic_int8"
    why = dict(rec.rejected)["minilm · static_int8 · onnxruntime · cpu"]
    assert why.startswith("setting 1: no rate meets p99 ≤ 100 ms: at the lowest rate")


def test_the_report_has_a_capacity_table_load_charts_and_cards(tmp_path):
    run = serving_run(VARIANTS, accuracy={"fp32": 0.9, "dynamic_int8": 0.9, "static_int8": 0.9})
    written = write_reports(parse_run(run), tmp_path)
    html = written["index.html"].read_text()
    assert '<section id="serving">' in html and "not an MLPerf result" in html.replace("\n", " ")
    table = html[html.index('id="serving-table"'):html.index("</table>", html.index('id="serving-table"'))]
    assert "max batch 1: 20.0, max batch 4: 40.0" in table and ">120<" in table
    charts_found = re.findall(r'data-chart="(load-\d+)"', html)
    assert len(set(charts_found)) == 3
    load = html[html.index('data-chart="load-0"'):]
    load = load[:load.index("</svg>")]
    assert 'class="slo"' in load and "SLO p99 ≤ 100 ms" in load and load.count('class="mark"') >= 8
    card = (tmp_path / "model_cards" / "minilm-dynamic_int8-onnxruntime-cpu.md").read_text()
    assert "Serving under load (MLPerf LoadGen)" in card and "| p99 ≤ 100 ms | 120 | max batch 4 |" in card


def test_an_llm_only_report_leaves_out_panels_with_nothing_to_show():
    chart_list = build_charts(analyse(parse_run(make_generation_run(seed=1))))
    ids = [c["id"] for c in chart_list]
    assert "latency" not in ids and all(c["svg"] is not None for c in chart_list)
    assert "ttft-0" in ids and "generation-pareto" in ids


def test_labels_on_the_kl_vs_speed_up_chart_never_overlap():
    # The llm suite's layout: fp32 on three runtimes and q8_0 / the shipped GGUF sit near KL 0.
    raw = [("fp32 · pytorch", 1.0, 0.0), ("fp32 · onnxruntime", 2.03, 0.0), ("fp32 · llamacpp", 2.85, 0.0),
           ("q8_0 · llamacpp", 8.06, 0.0077), ("gguf · llamacpp", 5.92, 0.0064), ("q4_k_m · llamacpp", 7.04, 0.0911),
           ("q4_0 · llamacpp", 11.69, 0.5078), ("dynamic_int8 · pytorch", 2.03, 1.54)]
    front = pareto_front([(x, -y) for _, x, y in raw])
    svg = str(charts.scatter_chart(chart_id="p", title="t", x_title="x", y_title="y",
                                   points=[(n, x, y, f) for (n, x, y), f in zip(raw, front)]))
    labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(\w+)" class="tick point-label">([^<]*)</text>',
                        svg)
    boxes = [charts.label_box(float(x), float(y), anchor, text) for x, y, anchor, text in labels]
    assert len(labels) >= 4
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and a[2] <= charts.WIDTH
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    named = " ".join(text.replace("&amp;", "&") for *_, text in labels)
    assert all(name in named for (name, _, _), on in zip(raw, front) if on)  # every front point is named


def test_a_capacity_the_slo_did_not_bind_is_labelled_so_in_the_report_and_cards(tmp_path):
    from quantbench.reports.serving_view import serving_row

    run = serving_run(VARIANTS, accuracy={"fp32": 0.9, "dynamic_int8": 0.9, "static_int8": 0.9})
    for bench in run["benchmarks"]:
        if bench["params"].get("scenario") == "server" and bench["params"]["quant"] == "static_int8":
            bench["extra_info"].update(slo_binding=False, capacity_bound_by="SLO not binding: every point was VALID")
    analysis = analyse(parse_run(run))
    rows = {s.variant.quant: serving_row(s) for s in analysis.variants if s.serving}
    assert rows["static_int8"]["capacity"] == "150 (SLO not binding)"
    assert rows["static_int8"]["note"] == "SLO not binding: every point was VALID"
    assert "not binding" not in rows["dynamic_int8"]["capacity"]
    written = write_reports(parse_run(run), tmp_path)
    card = (tmp_path / "model_cards" / "minilm-static_int8-onnxruntime-cpu.md").read_text()
    assert "150 (SLO not binding)" in card and "150 (SLO not binding)" in written["index.html"].read_text()
