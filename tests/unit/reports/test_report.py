"""`quantbench report` on synthetic runs: outputs exist, numbers are right, names are escaped."""

from __future__ import annotations

import copy
import json
import re

import pytest

from quantbench import cli
from quantbench.reports.model import analyse, pareto_front
from quantbench.results import METRICS, parse_run
from tests.run_factory import DEFAULT_MACHINE, make_run

OUTPUTS = ("index.html", "report.json", "github-action-benchmark-smaller.json", "github-action-benchmark-bigger.json")


@pytest.fixture(autouse=True)
def only_report_commands(monkeypatch):
    # The gate's commands are another module's business; keep these tests independent of it.
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("quantbench.reports.commands",))


def write(tmp_path, data, name="run.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def report(tmp_path, data, *extra):
    out = tmp_path / "out"
    assert cli.main(["report", str(write(tmp_path, data)), "-o", str(out), *extra]) == 0
    return out


def p50(bench):
    return bench["extra_info"]["latency_ms"]["p50"]


def test_report_writes_all_outputs(tmp_path):
    data = make_run()
    out = report(tmp_path, data)
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    cards = sorted(p.name for p in (out / "model_cards").glob("*.md"))
    assert len(cards) == 6 and "minilm-dynamic_int8-onnxruntime-cpu.md" in cards
    html = (out / "index.html").read_text()
    # Self-contained: nothing fetched from the network.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert html.count('<svg class="chart"') >= 7
    assert "ci-runner-1" in html and "transformers" in html and "4.57.6" in html


def test_default_out_dir_is_reports_latest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", str(write(tmp_path, make_run(batch_sizes=(1,))))]) == 0
    assert (tmp_path / "reports" / "latest" / "index.html").exists()


def test_report_json_has_every_cell_and_right_speedups(tmp_path):
    data = make_run()
    out = report(tmp_path, data)
    rep = json.loads((out / "report.json").read_text())
    assert rep["schema_version"] == 1
    assert len(rep["cells"]) == len(data["benchmarks"])
    by_name = {c["name"]: c for c in rep["cells"]}
    benches = {b["name"]: b for b in data["benchmarks"]}
    for name, bench in benches.items():
        for key, value in bench["extra_info"].items():
            if key in METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                assert by_name[name]["metrics"][key] == pytest.approx(value)
    # Speed-up = p50 of fp32/pytorch at the same batch and seq, over this cell's p50.
    ref = benches["test_latency[minilm-tweets-fp32-pytorch-cpu-bs8-seq64]"]
    cell = "test_latency[minilm-tweets-dynamic_int8-onnxruntime-cpu-bs8-seq64]"
    assert by_name[cell]["speedup_vs_fp32"] == pytest.approx(p50(ref) / p50(benches[cell]))
    assert by_name[cell]["fp32_reference"] == "minilm-tweets-fp32-pytorch-cpu-bs8-seq64"
    assert rep["machine"]["node"] == "ci-runner-1"


def test_github_action_benchmark_split_by_direction(tmp_path):
    data = make_run(batch_sizes=(8,))
    out = report(tmp_path, data)
    smaller = json.loads((out / "github-action-benchmark-smaller.json").read_text())
    bigger = json.loads((out / "github-action-benchmark-bigger.json").read_text())
    for entries, better in ((smaller, "lower"), (bigger, "higher")):
        assert entries and all(set(e) == {"name", "unit", "value", "extra"} for e in entries)
        for e in entries:
            metric = e["name"].rsplit(" ", 1)[1]
            if metric != "speedup_vs_fp32":
                assert METRICS[metric].better == better, e["name"]
    names = {e["name"]: e for e in smaller + bigger}
    bench = data["benchmarks"][0]
    assert names[f"{bench['name']} latency_p50_ms"]["value"] == pytest.approx(p50(bench))
    assert names[f"{bench['name']} latency_p50_ms"]["unit"] == "ms"
    total_metrics = sum(len(record.metrics) for record in parse_run(data).records)
    assert len(smaller) + len(bigger) == total_metrics + 6  # plus one speed-up per latency cell (6 variants x bs8)


def test_names_are_escaped_everywhere(tmp_path):
    evil = "<script>alert(1)</script>"
    machine = copy.deepcopy(DEFAULT_MACHINE)
    machine["node"] = "</script><script>alert(2)</script>"
    data = make_run(models=(evil,), machine=machine, batch_sizes=(1, 8))
    data["quantbench"]["suite"]["name"] = "<img src=x onerror=alert(3)>"
    out = report(tmp_path, data)
    html = (out / "index.html").read_text()
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # In the embedded JSON, < and > are \u escapes, so the data block cannot close its <script>.
    data_block = html.split('id="quantbench-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003cscript\\u003ealert(1)" in data_block
    for card in (out / "model_cards").glob("*.md"):
        body = card.read_text().split("---", 2)[2]
        assert "<script>" not in body and "&lt;script&gt;" in body
        assert "<" not in card.name and ">" not in card.name


def test_missing_metrics_render_as_dash_and_empty_run_does_not_crash(tmp_path):
    data = make_run(with_accuracy=False, batch_sizes=(1, 8))
    for bench in data["benchmarks"][::2]:
        del bench["extra_info"]["peak_rss_mb"]
    out = report(tmp_path, data)
    html = (out / "index.html").read_text()
    assert "—" in html
    assert "No accuracy data in this run" in html
    rep = json.loads((out / "report.json").read_text())
    assert all(r["status"] == "no-accuracy" for r in rep["recommendations"])

    empty = make_run()
    empty["benchmarks"] = []
    out2 = tmp_path / "empty"
    assert cli.main(["report", str(write(tmp_path, empty, "empty.json")), "-o", str(out2)]) == 0
    assert "No variants in this run" in (out2 / "index.html").read_text()


def test_failed_and_skipped_are_listed(tmp_path):
    data = make_run(batch_sizes=(1,),
                    failed=[{"test": "test_latency", "cell_id": "minilm-nf4-cuda", "params": {},
                             "reason": "CUDA out of memory"}],
                    skipped=[{"test": "test_latency", "cell_id": "minilm-nf4-mps", "params": {},
                              "reason": "bitsandbytes needs CUDA"}])
    out = report(tmp_path, data)
    html = (out / "index.html").read_text()
    assert "CUDA out of memory" in html and "bitsandbytes needs CUDA" in html
    rep = json.loads((out / "report.json").read_text())
    assert rep["failed"][0]["reason"] == "CUDA out of memory" and len(rep["skipped"]) == 1


def test_recommendation_skips_variants_losing_accuracy_or_fairness():
    data = make_run(accuracy={"fp32": 0.90, "dynamic_int8": 0.85})  # int8 loses > 1% of fp32 accuracy
    for bench in data["benchmarks"]:
        p = bench["params"]
        if bench["name"].startswith("test_accuracy") and p["quant"] == "static_int8":
            bench["extra_info"]["dp_difference"] = 0.05 + 0.03  # worse than fp32 by more than 0.02
    analysis = analyse(parse_run(data))
    (rec,) = analysis.recommendations
    assert rec.status == "ok"
    # Fastest are ORT dynamic int8 (accuracy) and ORT static int8 (fairness); next is ORT fp32.
    assert (rec.variant.variant.quant, rec.variant.variant.backend) == ("fp32", "onnxruntime")
    reasons = dict(rec.rejected)
    assert "accuracy" in reasons["minilm · dynamic_int8 · onnxruntime · cpu"]
    assert "dp_difference" in reasons["minilm · static_int8 · onnxruntime · cpu"]

    data["quantbench"]["suite"]["fairness_tolerance"] = 0.05  # now within tolerance
    (rec,) = analyse(parse_run(data)).recommendations
    assert (rec.variant.variant.quant, rec.variant.variant.backend) == ("static_int8", "onnxruntime")


def test_speedup_falls_back_to_same_backend_fp32():
    data = make_run(variants=(("fp32", "onnxruntime"), ("dynamic_int8", "onnxruntime")), batch_sizes=(8,))
    analysis = analyse(parse_run(data))
    benches = {b["params"]["quant"]: b for b in data["benchmarks"] if b["name"].startswith("test_latency")}
    row = next(r for r in analysis.rows if r.variant.quant == "dynamic_int8")
    assert row.speedup == pytest.approx(p50(benches["fp32"]) / p50(benches["dynamic_int8"]))


def test_pareto_front():
    points = [(1.0, 0.0), (2.0, -0.5), (3.0, -2.0), (1.5, -1.0), (2.0, -0.6)]
    assert pareto_front(points) == [True, True, True, False, False]
    assert pareto_front([(1.0, 0.0), (1.0, 0.0)]) == [True, True]  # ties do not dominate


def test_missing_input_is_a_clean_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nope.json"), "-o", str(tmp_path / "o")]) == 2
    assert "cannot read run file" in capsys.readouterr().err
