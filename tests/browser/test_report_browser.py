"""index.html in a real headless Chromium: no console errors, every chart laid out with marks.

No browser driver library: Chromium's ``--dump-dom`` prints the DOM after the page's scripts
ran, and the page's own self-check (``html[data-selfcheck]``, enabled fully by the
``#selfcheck`` hash) records chart boxes, mark counts, a sort check and caught JS errors.
Console messages come from ``--enable-logging=stderr`` (lines with ``:CONSOLE``).
CI installs ``chromium chromium-driver`` with apt.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from quantbench.reports import write_reports
from tests.run_factory import make_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install -y chromium)")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--window-size=1400,1000")
EXPECTED_CHARTS = {"latency-0", "throughput", "size", "memory", "pareto", "fairness-groups", "flip-rate"}


def load_in_chromium(page: Path) -> tuple[dict | None, list[str]]:
    """(self-check result or None, console lines) for a local page."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri() + "#selfcheck"],
                              capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    match = re.search(r'data-selfcheck="([^"]*)"', proc.stdout)
    return (json.loads(html.unescape(match.group(1))) if match else None), console


def rendered_charts(data: dict, folder: Path) -> dict[str, dict]:
    """Write ``data`` as a run, render its report and load it: the self-check's charts by id, after
    asserting that the page ran without a console message or a caught error."""
    run = folder / "run.json"
    run.write_text(json.dumps(data))
    page = write_reports(run, folder / "report", model_cards=False)["index.html"]
    check, console = load_in_chromium(page)
    assert console == [] and check is not None and check["errors"] == []
    return {c["id"]: c for c in check["charts"]}


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser")
    data = make_run(models=("minilm", "<b>bold</b>"), batch_sizes=(1, 8, 32),
                    failed=[{"test": "test_latency", "cell_id": "minilm-nf4-cuda", "reason": "no CUDA"}])
    run = out / "run.json"
    run.write_text(json.dumps(data))
    return write_reports(run, out / "report", model_cards=False)["index.html"]


def test_report_renders_without_errors(report_page):
    check, console = load_in_chromium(report_page)
    assert console == []
    assert check is not None, "self-check did not run"
    assert check["errors"] == []
    charts = {c["id"]: c for c in check["charts"]}
    assert EXPECTED_CHARTS <= set(charts)
    for chart in charts.values():
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] > 0, chart
    assert check["sort"] == {"key": "latency_p50_ms", "ascending": True, "n": 36}


def test_the_harness_sees_errors(tmp_path):
    # Guards the test above: a broken page must be reported, not pass silently.
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><svg class="chart"></svg><script>console.error("bad"); null.f();</script></body></html>')
    check, console = load_in_chromium(bad)
    assert check is None
    assert any("bad" in line for line in console) and any("Uncaught" in line for line in console)


def test_generation_and_roofline_charts_render_with_every_mark(tmp_path):
    from tests.run_factory import make_generation_run

    data = make_generation_run(seed=7, with_classification=True)
    data["machine_info"]["quantbench"]["limits"] = {"cpu": {"limits": {
        "matmul_fp32": {"peak": 330.0}, "matmul_bf16": {"peak": 2000.0}, "matmul_int8_onnxruntime": {"peak": 2200.0},
        "bandwidth_copy": {"peak": 25.0}, "bandwidth_triad": {"peak": 29.0}}}}
    cells = 0
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        if bench["name"].startswith("test_generation"):  # a prefill and a decode point each
            extra.update(arithmetic_intensity=60.0, prefill_gflops=150.0, decode_arithmetic_intensity=0.5,
                         decode_gflops=8.0, compute_share=0.1)
            cells += 2
        elif bench["name"].startswith("test_latency"):
            extra.update(arithmetic_intensity=5.0, achieved_gflops=40.0, compute_share=0.1)
            cells += 1
    charts = rendered_charts(data, tmp_path)
    assert {"ttft-0", "decode-0", "generation-pareto", "roofline-cpu"} <= set(charts)
    assert charts["roofline-cpu"]["marks"] == cells
    for chart in charts.values():
        assert chart["width"] > 100 and chart["height"] > 50 and chart["marks"] > 0, chart


def test_intervals_and_batch_sensitivity_render_and_the_table_still_sorts(tmp_path):
    from tests.interval_factory import set_batch_figures, with_intervals
    from tests.run_factory import make_generation_run

    data = with_intervals(make_generation_run(seed=7, with_classification=True))
    set_batch_figures(data, quant="dynamic_int8", backend="pytorch", test="test_perplexity", perplexity_at_bs8=1350.0,
                      perplexity_at_bs8_delta_pct=8.0, perplexity_at_bs8_delta_pct_ci95=[5.1, 10.9])
    run = tmp_path / "run.json"
    run.write_text(json.dumps(data))
    page = write_reports(run, tmp_path / "report", model_cards=False)["index.html"]
    text = page.read_text()
    assert 'id="batch-table"' in text and "±" in text
    check, console = load_in_chromium(page)
    assert console == [] and check is not None and check["errors"] == []
    # The self-check sorts the results table (the first sortable one) by p50: intervals do not disturb it.
    assert check["sort"]["key"] == "latency_p50_ms" and check["sort"]["ascending"] and check["sort"]["n"] > 0
