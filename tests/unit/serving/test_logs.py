"""LoadGen's logs read back: verdict, reasons, rates, percentiles and AccuracyOnly responses."""

from __future__ import annotations

import json

import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.logs import read_accuracy, read_point

SUMMARY = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : Server
Mode     : PerformanceOnly
Completed samples per second    : 471.23
Result is : INVALID
  Performance constraints satisfied : NO
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: NO
Recommendations:
 * Reduce target QPS to improve latency.
Early Stopping Result:
 * Run unsuccessful.
"""


def mllog(key, value, error=False):
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "metadata": {"is_error": error}})


def write_logs(folder, facts, summary=SUMMARY):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mlperf_log_summary.txt").write_text(summary)
    (folder / "mlperf_log_detail.txt").write_text("\n".join(mllog(k, v) for k, v in facts.items()) + "\nnoise\n")


def test_an_invalid_server_point_keeps_every_reason_and_figure(tmp_path):
    write_logs(tmp_path, {
        "result_validity": "INVALID", "result_perf_constraints_met": False, "result_min_duration_met": True,
        "result_min_queries_met": True, "early_stopping_met": False,
        "early_stopping_result": " * Run unsuccessful.\n * Processed 949 queries.",
        "result_completed_samples_per_sec": 471.23, "result_scheduled_samples_per_sec": 473.79,
        "result_query_count": 949, "result_overlatency_query_count": 30,
        "result_50.00_percentile_latency_ns": 2731652, "result_99.00_percentile_latency_ns": 37_580_000,
        "result_mean_latency_ns": 3_456_500})
    point = read_point(tmp_path, scenario="server", target_qps=480.0, relative_to=tmp_path.parent)
    assert not point.valid and point.verdict == "INVALID"
    assert point.reasons == ["the latency bound was not met at the percentile",
                             "early stopping was not satisfied: Run unsuccessful. * Processed 949 queries.",
                             "Reduce target QPS to improve latency."]
    assert point.completed_qps == 471.23 and point.scheduled_qps == 473.79 and point.overlatency_queries == 30
    assert point.latency_ms == {"p50": 2.7317, "p99": 37.58, "mean": 3.4565}
    assert point.log_dir == tmp_path.name
    record = point.to_record()
    assert record["target_qps"] == 480.0 and record["achieved_qps"] == 471.23 and record["verdict"] == "INVALID"


def test_token_latencies_and_loadgen_errors_are_read(tmp_path):
    write_logs(tmp_path, {
        "result_validity": "VALID", "result_completed_samples_per_sec": 3.5,
        "result_first_token_90.00_percentile_latency_ns": 250e6,
        "result_time_per_output_token_90.00_percentile_ns": 31e6, "result_completed_tokens_per_second": 56.0},
        summary="Result is : VALID\n")
    (tmp_path / "mlperf_log_detail.txt").write_text((tmp_path / "mlperf_log_detail.txt").read_text()
                                                   + mllog("error_runtime", "boom", error=True) + "\n")
    point = read_point(tmp_path, scenario="server")
    assert point.valid and point.ttft_ms == {"p90": 250.0} and point.tpot_ms == {"p90": 31.0}
    assert point.tokens_per_s == 56.0
    assert point.reasons == ["LoadGen error: error_runtime: boom"]


def test_a_point_without_a_result_is_a_one_line_error(tmp_path):
    write_logs(tmp_path, {"loadgen_version": "6.0.17"})
    with pytest.raises(QuantbenchError, match="LoadGen wrote no result"):
        read_point(tmp_path, scenario="server")
    with pytest.raises(QuantbenchError, match="cannot read LoadGen's detail log"):
        read_point(tmp_path / "missing", scenario="server")


def test_accuracy_responses_are_decoded(tmp_path):
    (tmp_path / "mlperf_log_accuracy.json").write_text(json.dumps(
        [{"seq_id": 0, "qsl_idx": 3, "data": "01000000"}, {"seq_id": 1, "qsl_idx": 0, "data": "0000000002000000"}]))
    assert read_accuracy(tmp_path) == {3: b"\x01\x00\x00\x00", 0: b"\x00" * 4 + b"\x02\x00\x00\x00"}
    (tmp_path / "mlperf_log_accuracy.json").write_text('[{"qsl_idx": 1, "data": "zz"}]')
    with pytest.raises(QuantbenchError, match="not hex"):
        read_accuracy(tmp_path)
