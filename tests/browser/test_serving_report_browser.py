"""The serving section in a real headless Chromium: load charts laid out with their marks, no errors."""

from __future__ import annotations


import pytest

from tests.browser.test_report_browser import CHROMIUM, rendered_charts
from tests.unit.serving.factory import serving_run

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install -y chromium)")


def test_serving_charts_render_with_every_point(tmp_path):
    data = serving_run({("fp32", "pytorch"): 40.0, ("dynamic_int8", "onnxruntime"): None},
                       accuracy={"fp32": 0.9, "dynamic_int8": 0.9})
    charts = rendered_charts(data, tmp_path)
    assert {"load-0", "load-1"} <= set(charts)
    for chart_id in ("load-0", "load-1"):
        chart = charts[chart_id]
        # Two settings of 4 points each, plus a line per setting.
        assert chart["width"] > 100 and chart["height"] > 50 and chart["marks"] == 4 * 2 + 2, chart
