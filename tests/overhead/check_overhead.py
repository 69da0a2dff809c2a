"""Does the harness add time? Its p50 against a bare loop, interleaved round by round.

Not part of the default sweep (the name does not match ``test_*.py``); run it explicitly::

    pytest tests/overhead/check_overhead.py --quant fp32 --backend pytorch --batch-size 8

Every harness round (the exact timed call of ``test_latency``, timed into pytest-benchmark's
stats) is preceded, untimed by pytest-benchmark, by one bare ``time.perf_counter`` round
of a separately loaded copy of the same checkpoint on the same inputs and threads, then by the
harness's own setup (the drift reference, when it is due), so its cost shows in the ratio. Interleaving
puts both under the same machine noise; on a shared 2-core VM, separate blocks drift by 30 %.
"""

import statistics
import time

import torch

from quantbench.runner.classification import measure_latency
from quantbench.tasks.classification.task import TASK

LIMIT = 1.03


def test_timing_overhead(cell, benchmark, quantbench_run, quantbench_pool, before_each_round):
    if (cell.backend != "pytorch" or cell.device != "cpu" or cell.quant != "fp32"
            or quantbench_run.suite.measure.end_to_end):
        import pytest

        # The bare copy is the plain checkpoint: against a quantized variant it would time another model.
        pytest.skip("the bare loop is written for model-only fp32 pytorch cells on the CPU")
    from transformers import AutoModelForSequenceClassification

    bare_model = AutoModelForSequenceClassification.from_pretrained(quantbench_run.source(cell.model).path).eval()
    encoding = TASK.cell_inputs(quantbench_run.splits, quantbench_run.tokenizer(cell.model), cell)
    bare_inputs = {k: torch.as_tensor(v) for k, v in encoding.items()}
    bare_seconds = []

    def bare_round():
        started = time.perf_counter()
        bare_model(**bare_inputs)
        bare_seconds.append(time.perf_counter() - started)

    before_each_round(bare_round)  # the harness's own setup (the drift reference) still runs right before its round
    extra = measure_latency(benchmark, quantbench_run, quantbench_pool, cell)
    bare_p50 = statistics.median(bare_seconds) * 1000
    ratio = extra["latency_ms"]["p50"] / bare_p50
    benchmark.extra_info.update(bare_p50_ms=round(bare_p50, 4), overhead_ratio=round(ratio, 4))
    print(f"\n{cell.id}: harness p50 {extra['latency_ms']['p50']:.2f} ms, bare p50 {bare_p50:.2f} ms, "
          f"ratio {ratio:.3f} over {extra['rounds']} rounds")
    assert ratio <= LIMIT
