"""Intervals, batch sensitivity, how quality was scored and the zero-shot floor, in every report:
index.html, report.json, github-action-benchmark files and model cards."""

from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from quantbench.reports import write_reports
from quantbench.reports.uncertainty import decimals_for, fmt_figure, fmt_uncertainty
from tests.interval_factory import set_batch_figures, with_intervals
from tests.run_factory import make_generation_run, make_run

PAIR = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"))
SCORING = "each text alone (batch 1)"


def llm_run() -> dict:
    run = make_generation_run(variants=PAIR, batch_sizes=(1,))
    set_batch_figures(run, quant="fp32", test="test_perplexity", perplexity=285.8, perplexity_se=9.1,
                      perplexity_ci95=[268.0, 303.6], quality_scoring=SCORING)
    set_batch_figures(run, quant="dynamic_int8", test="test_perplexity", quality_scoring=SCORING,
                      perplexity=958.43, perplexity_se=31.0, kl_divergence=1.79, kl_divergence_se=0.052,
                      perplexity_at_bs16=1075.44, perplexity_at_bs16_delta_pct=12.21,
                      perplexity_at_bs16_delta_pct_ci95=[9.8, 14.6],
                      perplexity_at_bs1=958.43, perplexity_at_bs1_delta_pct=0.0,
                      perplexity_at_bs1_delta_pct_ci95=[0.0, 0.0])
    set_batch_figures(run, quant="dynamic_int8", test="test_accuracy", accuracy=0.80,
                      accuracy_ci95=[0.667, 0.891], balanced_accuracy=0.5, majority_rate=0.80,
                      zero_shot_at_floor=True, accuracy_at_bs8=0.79, accuracy_at_bs8_delta_pts=-2.08,
                      accuracy_at_bs8_delta_pts_ci95=[-6.3, 2.1], predictions_changed_at_bs8=3)
    return run


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("intervals")
    path = tmp / "run.json"
    path.write_text(json.dumps(llm_run()))
    files = write_reports(path, tmp / "out")
    return {name: p.read_text() for name, p in files.items()}, files


def text_of(page: str, section: str) -> str:
    body = page.split(f'<section id="{section}">', 1)[1].split("</section>", 1)[0]
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


# -- formatting -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, ci, se, text", [
    ("perplexity", 285.8012, None, 9.1, "285.8 ± 9.1"),
    ("accuracy", 0.884, (0.862, 0.903), None, "0.884 [0.862, 0.903]"),
    ("kl_divergence", 0.01234, None, 0.00056, "0.01234 ± 0.00056"),
    ("accuracy_delta_pts", -1.3, (-2.9, 0.3), None, "-1.3 [-2.9, +0.3]"),
    ("perplexity", 1250.24, None, 38.0, "1,250 ± 38"),
    ("accuracy", 0.9, None, None, "0.9"),  # no interval: as before
    ("top1_agreement", 1.0, (1.0, 1.0), None, "1.00 [1.00, 1.00]"),  # zero width: compact digits
])
def test_a_figure_is_rounded_to_its_uncertainty(name, value, ci, se, text):
    assert fmt_figure(name, value, ci, se) == text


def test_uncertainty_alone_and_decimals():
    assert fmt_uncertainty("accuracy", 0.884, (0.862, 0.903)) == "95% CI [0.862, 0.903]"
    assert fmt_uncertainty("perplexity", 285.8, None, 9.1) == "± 9.1"
    assert fmt_uncertainty("accuracy", 0.884) is None
    assert (decimals_for(9.1), decimals_for(0.0205), decimals_for(0.0), decimals_for(150.0)) == (1, 3, None, 0)


# -- index.html -------------------------------------------------------------------------------------

def test_html_shows_intervals_in_the_table_and_the_quality_section(reports):
    texts, _ = reports
    page = texts["index.html"]
    results, quality = text_of(page, "results"), text_of(page, "quality")
    for figure in ("285.8 ± 9.1", "958 ± 31", "1.790 ± 0.052", "0.80 [0.67, 0.89]"):
        assert figure in results and figure in quality, figure
    assert "balanced_accuracy" in quality and "majority_rate" in quality
    # The table still sorts on the value, not the text.
    assert 'data-sort="285.8"' in page


def test_html_shows_scoring_and_the_zero_shot_flag(reports):
    texts, _ = reports
    page = texts["index.html"]
    assert f"Quality scored: {SCORING}." in htmllib.unescape(re.sub(r"<[^>]+>", "", page))
    quality = text_of(page, "quality")
    assert "zero-shot — at the majority floor: flagged, not ranked" in quality
    rec = text_of(page, "recommendation")
    assert "tinyllm · dynamic_int8 · pytorch · cpu: flagged: zero-shot at the majority floor" in rec


def test_html_batch_sensitivity_table(reports):
    texts, _ = reports
    batch = text_of(texts["index.html"], "batch-sensitivity")
    assert ("tinyllm · dynamic_int8 · pytorch · cpu perplexity 16 958 ± 31 1,075 +12.2 [+9.8, +14.6] % — significant"
            in batch)
    assert ("tinyllm · dynamic_int8 · pytorch · cpu accuracy 8 0.80 [0.67, 0.89] 0.79 -2.1 [-6.3, +2.1] pts 3 "
            "no significant change") in batch
    assert "perplexity 1 958 ± 31 958 0 [0, 0] % — no significant change" in batch


def test_an_old_run_renders_without_intervals_or_batch_rows(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(make_run(batch_sizes=(8,), variants=PAIR)))
    files = write_reports(path, tmp_path / "out")
    page = files["index.html"].read_text()
    table = page.split('id="results-table"', 1)[1].split("</table>", 1)[0]
    assert "±" not in table and not re.search(r"\d \[", table)
    assert "No batch-sensitivity figures in this run" in page and "Quality scored" not in page
    report = json.loads(files["report.json"].read_text())
    assert all(c["intervals"] == {} and c["standard_errors"] == {} for c in report["cells"])
    assert all(v["batch_sensitivity"] == [] and v["zero_shot_at_floor"] is None for v in report["variants"])
    card = files["model_cards/minilm-dynamic_int8-pytorch-cpu.md"].read_text()
    assert "95 % interval" not in card and "### Batch sensitivity" not in card


# -- report.json and github-action-benchmark --------------------------------------------------------

def test_report_json_carries_intervals_flags_and_batch_rows(reports):
    texts, _ = reports
    report = json.loads(texts["report.json"])
    cell = next(c for c in report["cells"] if c["test"] == "test_perplexity" and c["params"]["quant"] == "fp32")
    assert cell["intervals"]["perplexity"] == [268.0, 303.6] and cell["standard_errors"] == {"perplexity": 9.1}
    assert cell["quality_scoring"] == SCORING
    int8 = next(v for v in report["variants"] if v["quant"] == "dynamic_int8")
    assert int8["zero_shot_at_floor"] is True and int8["quality_scoring"] == SCORING
    assert int8["quality_intervals"]["accuracy"] == [0.667, 0.891]
    assert int8["quality_standard_errors"]["kl_divergence"] == 0.052
    rows = {(b["figure"], b["batch_size"]): b for b in int8["batch_sensitivity"]}
    assert rows[("perplexity", 16)] == {"figure": "perplexity", "batch_size": 16, "unpadded": 958.43, "at_batch": 1075.44,
                                        "change": 12.21, "change_unit": "%", "change_ci95": [9.8, 14.6],
                                        "predictions_changed": None, "verdict": "significant"}
    assert rows[("accuracy", 8)]["predictions_changed"] == 3 and rows[("accuracy", 8)]["verdict"] == \
        "no significant change"
    # Batch figures have their units and directions like their base figure.
    assert report["metrics"]["perplexity_at_bs16_delta_pct"]["unit"] == "%"
    assert report["metrics"]["accuracy_at_bs8"]["better"] == "higher"
    [rec] = report["recommendations"]
    assert any(n["note"].startswith("flagged: zero-shot") for n in rec["notes"])


def test_github_action_benchmark_entries_carry_the_range(reports):
    texts, _ = reports
    entries = json.loads(texts["github-action-benchmark-smaller.json"]) + json.loads(
        texts["github-action-benchmark-bigger.json"])
    by_name = {e["name"]: e for e in entries}
    fp32 = next(n for n in by_name if n.startswith("test_perplexity[") and "-fp32-" in n and n.endswith(" perplexity"))
    assert by_name[fp32]["range"] == "± 9.1"
    acc = next(n for n in by_name if "dynamic_int8" in n and n.endswith(" accuracy"))
    assert by_name[acc]["range"] == "95% CI [0.67, 0.89]"
    batch = next(n for n in by_name if n.endswith(" perplexity_at_bs16_delta_pct"))
    assert by_name[batch]["unit"] == "%" and by_name[batch]["value"] == 12.21
    assert all("range" not in e for e in entries if e["name"].startswith("test_generation["))


# -- model cards ------------------------------------------------------------------------------------

def test_cards_keep_plain_values_in_model_index_and_show_intervals_in_the_text(reports):
    texts, files = reports
    name = "model_cards/tinyllm-dynamic_int8-pytorch-cpu.md"
    card = ModelCard.load(files[name])
    _, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    found = {r.metric_type: r.metric_value for r in results}
    assert found["perplexity"] == 958.43 and found["accuracy"] == 0.80 and found["balanced_accuracy"] == 0.5
    assert "majority_rate" not in found  # context, not a result
    text = texts[name]
    assert "| perplexity | 958 ± 31 | 285.8 ± 9.1 |" in text
    assert "| accuracy | 0.80 [0.67, 0.89] |" in text
    assert f"Texts scored: {SCORING}." in text
    assert "**Flagged: zero-shot at the majority floor.**" in text and "majority rate 0.8" in text
    assert "| perplexity | 16 | 958 ± 31 | 1,075 | +12.2 [+9.8, +14.6] % | — | significant |" in text
    fp32_text = texts["model_cards/tinyllm-fp32-pytorch-cpu.md"]
    assert "Flagged" not in fp32_text and "### Batch sensitivity" not in fp32_text


def test_every_quality_figure_with_an_interval_shows_it_in_the_report(tmp_path):
    # A whole run with intervals on every share and standard errors on token figures: no quality
    # figure that has one is printed without it.
    path = tmp_path / "run.json"
    data = with_intervals(make_generation_run(with_classification=True, batch_sizes=(1,)))
    path.write_text(json.dumps(data))
    files = write_reports(path, tmp_path / "out")
    report = json.loads(files["report.json"].read_text())
    quality = text_of(files["index.html"].read_text(), "quality")
    for variant in report["variants"]:
        for name, (lo, hi) in variant["quality_intervals"].items():
            se = variant["quality_standard_errors"].get(name)
            assert fmt_figure(name, variant["quality"][name], (lo, hi), se) in quality, (variant["quant"], name)


def test_scoring_is_one_phrase_or_one_per_test_where_they_differ():
    from quantbench.reports.model import analyse
    from quantbench.results import parse_run

    run = llm_run()
    set_batch_figures(run, quant="dynamic_int8", test="test_accuracy", quality_scoring="exact-length buckets")
    [int8] = [s for s in analyse(parse_run(run)).variants if s.variant.quant == "dynamic_int8"]
    assert int8.quality_scoring == f"perplexity: {SCORING}; accuracy: exact-length buckets"
    [fp32] = [s for s in analyse(parse_run(run)).variants if s.variant.quant == "fp32"]
    assert fp32.quality_scoring == SCORING
