"""The serving section in a real headless Chromium: load charts laid out with their marks, no errors."""

from __future__ import annotations

import json

import pytest

from quantbench.reports import write_reports
from tests.browser.test_report_browser import CHROMIUM, load_in_chromium
from tests.unit.serving.factory import serving_run

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install -y chromium)")


def test_serving_charts_render_with_every_point(tmp_path):
    data = serving_run({("fp32", "pytorch"): 40.0, ("dynamic_int8", "onnxruntime"): None},
                       accuracy={"fp32": 0.9, "dynamic_int8": 0.9})
    run = tmp_path / "run.json"
    run.write_text(json.dumps(data))
    page = write_reports(run, tmp_path / "report", model_cards=False)["index.html"]
    check, console = load_in_chromium(page)
    assert console == [] and check is not None and check["errors"] == []
    charts = {c["id"]: c for c in check["charts"]}
    assert {"load-0", "load-1"} <= set(charts)
    for chart_id in ("load-0", "load-1"):
        chart = charts[chart_id]
        # Two settings of 4 points each, plus a line per setting.
        assert chart["width"] > 100 and chart["height"] > 50 and chart["marks"] == 4 * 2 + 2, chart
