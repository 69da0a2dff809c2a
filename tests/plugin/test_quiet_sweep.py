"""A sweep is quiet: no library-load lines on stderr and no warning summary, from a cold cache (every
variant exported and quantized in this run) on every runtime, workers included.

What quantbench silences, it silences by name with the reason (backends/log_filters.py, torchao/quiet.py,
pytorch/torch_ao.py); anything else a library prints still shows, and fails this test.
"""

from __future__ import annotations


import pytest

from quantbench.backends.runtime import importable
from tests.tiny import tiny_suite, write_suite


def test_a_cold_sweep_of_every_runtime_prints_nothing_but_its_own_lines(pytester, bench_dir, tiny_model, tiny_data,
                                                                         isolated_cache):
    # NF4 is not here: bitsandbytes' 4-bit blocks do not fit the tiny model's 32-wide rows.
    for module, extra in (("optimum.onnxruntime", "onnx"), ("optimum.intel", "openvino"), ("torchao", "torchao")):
        if not importable(module):  # a dotted name whose parent is missing is not importable
            pytest.skip(f"this sweep covers every runtime: {module} is missing (the {extra} extra)")
    suite = tiny_suite(tiny_model, tiny_data, quantization=["fp32", "dynamic_int8", "static_int8", "int8dq"],
                       backends=["pytorch", "onnxruntime", "openvino"], batch_sizes=[1])
    path = write_suite(pytester.path / "suite.yaml", suite)
    # Without pytest's log capture, a library's log line reaches stderr as it would outside pytest.
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "-p", "no:cacheprovider", "-p", "no:logging",
                                           "-q", "--benchmark-json", str(pytester.path / "results.json"))
    assert result.ret == 0, result.stdout.str()[-3000:]
    # pytest-benchmark's own line is the only one on stderr.
    assert [line for line in result.stderr.lines if line.strip() and not line.startswith("Wrote benchmark data in: ")] == []
    assert "warnings summary" not in result.stdout.str(), result.stdout.str()[-3000:]
