"""Latency, throughput, memory and size for every cell of the suite.

Run: ``pytest bench/ --benchmark-json results.json`` (see README for options).
"""

from quantbench import runner


def test_latency(cell, benchmark, quantbench_run, quantbench_pool):
    extra = runner.measure(benchmark, quantbench_run, quantbench_pool, cell)
    # The figures must exist and be physical; a broken measurement fails the cell.
    assert extra["latency_ms"]["p50"] > 0
    assert extra["disk_size_mb"] > 0
    if cell.quant != "fp32":
        assert extra["quantized_layers"] > 0
