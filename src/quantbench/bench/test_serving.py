"""Serving under load: every variant's capacity at the suite's latency SLO, measured by MLPerf LoadGen.

One cell per variant and scenario of the suite's ``serving`` section (single_stream, offline,
server); the suite's batch sizes are settings inside a cell (the dynamic batcher's maximum batch,
or llama-server's --parallel). Shortened LoadGen runs: not an MLPerf submission.
Run: ``pytest bench/test_serving.py --suite serving --report-dir reports/serving`` (or ``make serve``).
"""

import pytest

from quantbench.serving import cell as serving_cell_mod


def test_serving(serving_cell, benchmark, quantbench_run, quantbench_pool, quantbench_serving):
    reason = serving_cell_mod.unavailable(serving_cell)
    if reason:
        pytest.skip(reason)
    extra = serving_cell_mod.measure_serving(benchmark, quantbench_run, quantbench_pool, serving_cell,
                                             log_root=quantbench_serving.log_root,
                                             relative_to=quantbench_serving.relative_to,
                                             batch_sizes=quantbench_serving.batch_sizes)
    settings = extra["serving"]["settings"]
    assert settings, "a serving cell serves at least one setting"
    if serving_cell.scenario == "server":
        # A capacity, or the one line saying no rate met the SLO; never neither.
        assert (extra.get("capacity_qps") or 0) > 0 or extra.get("capacity_message")
        assert all(s["points"] or s.get("message") for s in settings)
    if serving_cell.scenario == "offline":
        assert extra["offline_qps"] > 0
    if serving_cell.scenario == "single_stream":
        assert extra["single_stream_p90_ms"] > 0
