"""Model cards load back with huggingface_hub and carry the same numbers as report.json."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from quantbench.reports import write_reports
from quantbench.reports.model_card import ACCURACY_METRICS, FAIRNESS_METRICS
from tests.run_factory import make_run


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cards")
    data = make_run(accuracy={"fp32": 0.91, "dynamic_int8": 0.905, "nf4": 0.88}, batch_sizes=(1, 8))
    data["quantbench"]["suite"]["command"] = "pytest bench/ --suite suites/default.yaml --benchmark-json r.json"
    run = tmp / "run.json"
    run.write_text(json.dumps(data))
    return write_reports(run, tmp / "out"), data


def test_one_card_per_variant(written):
    files, data = written
    cards = [name for name in files if name.startswith("model_cards/")]
    variants = {tuple(b["params"][k] for k in ("model", "quant", "backend", "device")) for b in data["benchmarks"]}
    assert len(cards) == len(variants) == 6


def test_cards_round_trip_to_the_json_numbers(written):
    files, _ = written
    report = json.loads(files["report.json"].read_text())
    quality = {(v["model"], v["quant"], v["backend"], v["device"]): v["quality"] for v in report["variants"]}
    for name, path in files.items():
        if not name.startswith("model_cards/"):
            continue
        card = ModelCard.load(path)
        model_name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
        model, quant, backend, device = model_name.split("-")
        expected = quality[(model, quant, backend, device)]
        found = {r.metric_type: r.metric_value for r in results}
        wanted = {m: expected[m] for m in ACCURACY_METRICS + FAIRNESS_METRICS if m in expected}
        assert found == pytest.approx(wanted)
        assert {"accuracy", "dp_difference", "eo_difference", "flip_rate"} <= set(found)
        assert all(r.task_type == "text-classification" for r in results)
        assert {r.dataset_name for r in results} >= {"tweets"}
        assert card.data.eval_results and card.data.tags[:2] == [quant, backend] and "quantbench" in card.data.tags


def test_card_body_sections(written):
    files, _ = written
    text = files["model_cards/minilm-nf4-pytorch-cpu.md"].read_text()
    for heading in ("## Model details", "## Intended use", "## Performance", "## Accuracy vs fp32", "## Fairness",
                    "## Limitations", "## Environment", "## Reproduce"):
        assert heading in text, heading
    assert "Kiritchenko & Mohammad, 2018" in text
    assert "pytest bench/ --suite suites/default.yaml --benchmark-json r.json" in text
    assert "| Quantized layers (proof of quantization) | 37 |" in text
    assert "| accuracy | 0.88 | 0.91 | -0.0300 |" in text
    assert "| 8 | 64 |" in text  # a performance row per batch size
    assert "| female |" in text and "Test CPU @ 2.0GHz" in text


def test_command_argument_wins_and_hub_base_model(tmp_path):
    data = make_run(batch_sizes=(1,), variants=(("fp32", "pytorch"),))
    for bench in data["benchmarks"]:
        bench["extra_info"]["base_model"] = "sentence-transformers/all-MiniLM-L6-v2"
    files = write_reports(_dump(tmp_path, data), tmp_path / "out", command="make bench")
    card = ModelCard.load(files["model_cards/minilm-fp32-pytorch-cpu.md"])
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert "make bench" in card.text


def _dump(tmp_path, data):
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    return path


def test_render_matches_model_card_from_template():
    # render_card caches the compiled template; it must give exactly what from_template gives.
    from huggingface_hub import ModelCard as HubCard

    from quantbench.reports.model import analyse
    from quantbench.reports.model_card import TEMPLATE, card_context, card_data, render_card
    from quantbench.results import parse_run

    analysis = analyse(parse_run(make_run(batch_sizes=(1,))))
    summary = analysis.variants[0]
    expected = HubCard.from_template(card_data(summary, analysis), template_path=str(TEMPLATE),
                                     **card_context(summary, analysis, command="x"))
    assert render_card(summary, analysis, command="x") == expected.content
