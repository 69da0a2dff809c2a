"""Generation speed, memory and size for every generation cell of the suite (causal LMs).

Each round is one greedy ``generate`` of ``new_tokens`` tokens per row; the record holds the
time to first token, the decode time per token and tokens/s, each with its raw rounds.
Run: ``pytest bench/ --suite llm --benchmark-json llm.json``.
"""

from quantbench import runner


def test_generation(generation_cell, benchmark, quantbench_run, quantbench_pool):
    extra = runner.measure(benchmark, quantbench_run, quantbench_pool, generation_cell)
    assert extra["ttft_p50_ms"] > 0
    assert extra["latency_ms"]["p50"] >= extra["ttft_p50_ms"]
    assert extra["disk_size_mb"] > 0
    if generation_cell.new_tokens > 1:
        assert extra["decode_tokens_per_s"] > 0
    if generation_cell.quant != "fp32":
        assert extra["quantized_layers"] > 0
