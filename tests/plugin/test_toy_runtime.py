"""A runtime added from outside: one module exposing a Runtime object, registered through the
``quantbench.runtimes`` entry-point group of a temporary distribution, with no edit to quantbench.

The toy runtime wraps PyTorch fp32 under a new name, using only the public contract
(``backends.runtime`` and the shared Hugging Face helpers). A sweep runs its latency, accuracy and
generation cells end to end, and the report and the gate read the result.
"""

from __future__ import annotations

import json
import os
import textwrap

from tests.tiny import tiny_suite, write_suite

TOY = '''
"""A toy runtime: PyTorch fp32 under another name (what a third-party runtime module looks like)."""

import time

from quantbench.backends.runtime import Method, Runtime


def build_fp32(source, settings):
    from quantbench.backends import hf

    started = time.perf_counter()
    model = hf.load_model(source, settings)
    return hf.torch_variant(model, source, settings, quant="fp32", backend="toy", started=started, layers=0,
                            config={"method": "fp32", "runtime": "toy (PyTorch underneath)"})


RUNTIME = Runtime(name="toy", description="PyTorch fp32 under another name",
                  methods=(Method("fp32", "toyruntime:build_fp32", ("cpu",), "fp32, through the toy runtime"),))
'''


def install_toy(site):
    """A distribution on ``site`` that ships toyruntime.py and one entry point."""
    site.mkdir()
    (site / "toyruntime.py").write_text(textwrap.dedent(TOY))
    info = site / "toyruntime-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyruntime\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[quantbench.runtimes]\ntoy = toyruntime:RUNTIME\n")


def test_a_runtime_from_an_entry_point_runs_every_cell_kind_with_report_and_gate(
        pytester, bench_dir, tiny_model, tiny_llama, tiny_data, isolated_cache, monkeypatch, tmp_path):
    site = tmp_path / "site"
    install_toy(site)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    suite = tiny_suite(tiny_model, tiny_data, quantization=["fp32"], backends=["pytorch", "toy"], batch_sizes=[1])
    suite["models"].append({"name": "tinylm", "source": "path", "path": str(tiny_llama), "task": "text-generation",
                            "max_seq_len": 48})
    suite.update(prompt_lens=[8], new_tokens=[4],
                 quality={"texts": 8, "continuation_prompts": 2, "continuation_tokens": 4,
                          "continuation_prompt_tokens": 4, "zero_shot_texts": 12})
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "--benchmark-json", str(out),
                                           "-p", "no:cacheprovider", "--report-dir", str(pytester.path / "report"))
    data = json.loads(out.read_text())
    toy = [b for b in data["benchmarks"] if b["params"]["backend"] == "toy"]
    tests = {b["name"].split("[")[0] for b in toy}
    assert {"test_latency", "test_accuracy", "test_generation", "test_perplexity"} <= tests, result.stdout.str()
    failed = [f for f in data["quantbench"]["failed"]]
    assert failed == [], failed
    latency = next(b for b in toy if b["name"].startswith("test_latency"))
    assert latency["param"] == "tiny-toy-fp32-toy-cpu-bs1-seq16"
    assert latency["extra_info"]["quant_config"]["runtime"] == "toy (PyTorch underneath)"
    assert latency["extra_info"]["threads"] >= 1 and latency["extra_info"]["latency_ms"]["p50"] > 0
    generation = next(b for b in toy if b["name"].startswith("test_generation"))
    assert generation["extra_info"]["tpot_p50_ms"] > 0
    # The same model through PyTorch and through the toy runtime: the same predictions.
    accuracy = {b["params"]["backend"]: b["extra_info"]["accuracy"] for b in data["benchmarks"]
                if b["name"].startswith("test_accuracy") and b["params"]["model"] == "tiny"}
    assert accuracy["toy"] == accuracy["pytorch"]
    # The report and the gate read it like any run.
    html = (pytester.path / "report" / "index.html").read_text()
    assert "toy" in html
    from quantbench.cli import main

    assert main(["gate", str(out), str(out)]) == 0


def test_one_registry_line_adds_a_runtime_in_process():
    from quantbench import registry
    from quantbench.backends.runtime import Method, Runtime

    toy = Runtime(name="toy-inline", description="", methods=(Method("fp32", "quantbench.backends.pytorch.build:"
                                                                              "build_fp32", ("cpu",)),))
    registry.register_runtime(toy)
    try:
        assert "toy-inline" in registry.backends()
        assert registry.recipe("fp32", "toy-inline").runtime is toy
        assert registry.quality_reference("toy-inline") == "toy-inline"
    finally:
        registry.unregister_runtime("toy-inline")
    assert "toy-inline" not in registry.backends()
