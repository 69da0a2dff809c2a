"""The plugin end to end, through pytester on a tiny random model: ids, JSON shape, errors."""

from __future__ import annotations

import json

import pytest

from tests.tiny import tiny_suite, worker_memory, write_suite


def run_sweep(pytester, suite: dict, *args: str):
    path = write_suite(pytester.path / "suite.yaml", suite)
    out = pytester.path / "results.json"
    result = pytester.runpytest_subprocess("bench", "--suite", str(path), "--benchmark-json", str(out),
                                           "-p", "no:cacheprovider", *args)
    data = json.loads(out.read_text()) if out.exists() else None
    return result, data


def latency_ids(data) -> list[str]:
    return [b["param"] for b in data["benchmarks"] if b["group"] == "latency"]


def test_sweep_writes_pytest_benchmark_json_with_cells(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    pytest.importorskip("optimum.onnxruntime", reason="this sweep covers ONNX Runtime cells: needs the onnx extra")
    suite = worker_memory(tiny_suite(tiny_model, tiny_data, quantization=["fp32", "dynamic_int8", "static_int8"],
                                     backends=["pytorch", "onnxruntime"], devices=["cpu", "cuda"]))
    result, data = run_sweep(pytester, suite)
    ids = sorted(b["param"] for b in data["benchmarks"] if b["name"].startswith("test_latency"))
    # fp32 and dynamic_int8 on both backends, static_int8 on ORT only: 5 variants x 2 batch sizes.
    expected = sorted(f"tiny-toy-{q}-{b}-cpu-bs{bs}-seq16" for q, b in
                      [("fp32", "pytorch"), ("dynamic_int8", "pytorch"), ("fp32", "onnxruntime"),
                       ("dynamic_int8", "onnxruntime"), ("static_int8", "onnxruntime")] for bs in (1, 4))
    assert ids == expected
    for bench in data["benchmarks"]:
        if not bench["name"].startswith("test_latency"):
            continue
        assert set(bench["params"]) == {"model", "quant", "backend", "device", "batch_size", "seq_len"}
        extra = bench["extra_info"]
        for key in ("latency_ms", "throughput_samples_per_s", "throughput_tokens_per_s", "peak_rss_mb",
                    "disk_size_mb", "param_count", "build_seconds", "quantized_layers", "quant_config"):
            assert key in extra, key
        assert set(extra["latency_ms"]) >= {"p50", "p90", "p95", "p99", "mean", "std"}
        assert extra["memory_isolation"] == "worker"  # the default: a fresh process per variant
        # The raw rounds are kept, and the percentiles are computed from exactly them.
        rounds = bench["stats"]["data"]
        assert len(rounds) == bench["stats"]["rounds"] == extra["rounds"]
        assert extra["latency_ms"]["p50"] == pytest.approx(sorted(rounds)[len(rounds) // 2] * 1000, rel=0.5)
        assert extra["throughput_samples_per_s"] == pytest.approx(
            bench["params"]["batch_size"] / (extra["latency_ms"]["p50"] / 1000), rel=1e-3)
        # One drift-reference time per round, re-timed at most reference_every_s apart: several
        # rounds share one time, so there are fewer distinct values than rounds, and at least one.
        refs = extra["reference_s"]
        assert len(refs) == len(rounds) and all(r > 0 for r in refs)
        assert 1 <= len(set(refs)) <= len(refs)
        # Each backend pairs with a reference in its own runtime.
        runtime = "torch" if bench["params"]["backend"] == "pytorch" else "ort"
        assert extra["reference"]["name"].startswith(runtime + "-") and extra["reference"]["device"] == "cpu"
        if bench["params"]["quant"] == "fp32":
            assert extra["quantized_layers"] == 0
        else:
            assert extra["quantized_layers"] > 0
    by_id = {b["param"]: b["extra_info"] for b in data["benchmarks"]}
    # 2 layers x 6 Linear + pooler + classifier.
    assert by_id["tiny-toy-dynamic_int8-pytorch-cpu-bs1-seq16"]["quantized_layers"] == 14
    assert by_id["tiny-toy-static_int8-onnxruntime-cpu-bs1-seq16"]["quant_config"]["calibration_samples"] == 16
    info = data["machine_info"]["quantbench"]
    assert info["cpu_cores_logical"] >= 1 and info["versions"]["torch"]
    # No CUDA here: the CUDA cells are skipped with a reason, recorded, and never run under that label.
    import torch

    if not torch.cuda.is_available():
        skipped = [s for s in data["quantbench"]["skipped"] if s["test"] == "test_latency"]
        # fp32 on both backends can target CUDA; the INT8 recipes are CPU-only and are not cells there.
        assert len(skipped) == 4 and all("no CUDA device" in s["reason"] for s in skipped)
        assert not any(b["params"]["device"] == "cuda" for b in data["benchmarks"])
    result.stdout.fnmatch_lines(["*quantbench summary*", "*tiny-toy-dynamic_int8-pytorch-cpu-bs4-seq16*x"])


def test_options_narrow_and_cli_wins_over_env(pytester, bench_dir, tiny_model, tiny_data, isolated_cache,
                                               monkeypatch):
    monkeypatch.setenv("QUANTBENCH_QUANT", "dynamic_int8")
    monkeypatch.setenv("QUANTBENCH_BATCH_SIZE", "4")
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data))
    assert latency_ids(data) == ["tiny-toy-dynamic_int8-pytorch-cpu-bs4-seq16"]
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data), "--quant", "fp32")
    assert latency_ids(data) == ["tiny-toy-fp32-pytorch-cpu-bs4-seq16"]


def test_k_selects_by_readable_id(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data), "-k", "dynamic_int8 and bs1")
    assert latency_ids(data) == ["tiny-toy-dynamic_int8-pytorch-cpu-bs1-seq16"]


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        ({"quantization": ["fp32", "int3"]}, (), "*suite.yaml: quantization[1]: 'int3' is not allowed; allowed values: *"),
        ({"batch_sizes": [1, "big"]}, (), "*suite.yaml: batch_sizes[1]: expected int, got 'big'*"),
        ({"measure": {"warmup_rounds": 0}}, (), "*measure.warmup_rounds: must be at least 1*"),
        ({"colour": "red"}, (), "*suite.yaml: colour: unknown key; allowed keys: name, *"),
        ({}, ("--quant", "int3"), "*--quant int3: unknown quant; known: bf16, bnb_int8, dynamic_int8*"),
        ({}, ("--batch-size", "x"), "*--batch-size: 'x' is not a valid int*"),
        ({}, ("--processes", "0"), "*--processes: must be a positive integer, got 0*"),
        ({"models": [{"name": "m", "source": "path", "path": "/nonexistent/model"}]}, (),
         "*models[m].path: not a directory: /nonexistent/model*"),
    ],
)
def test_bad_input_is_one_clear_line(pytester, bench_dir, tiny_model, tiny_data, isolated_cache, change, args,
                                     message):
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data, **change), *args)
    assert result.ret != 0 and data is None
    pattern = message.replace("[", "[[]")  # fnmatch reads [ as a character class
    result.stdout.fnmatch_lines([f"*Exit: quantbench: {pattern}"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_accuracy_and_group_fairness_per_variant(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    result, data = run_sweep(pytester, tiny_suite(tiny_model, tiny_data))
    acc = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"] if b["group"] == "accuracy"}
    assert set(acc) == {"fp32", "dynamic_int8"}
    assert acc["fp32"]["agreement_with_fp32"] == 1.0 and acc["fp32"]["accuracy_delta_pts"] == 0.0
    # 240 rows, 80 held out; the group column is in the data, so fairlearn figures are there.
    assert acc["fp32"]["n_examples"] == 80
    groups = acc["dynamic_int8"]["fairness_data"]["by_attribute"]["group"]["by_group"]
    assert set(groups) == {"a", "b"} and sum(g["count"] for g in groups.values()) == 80
    delta = acc["dynamic_int8"]["accuracy"] - acc["fp32"]["accuracy"]
    assert acc["dynamic_int8"]["accuracy_delta_pts"] == pytest.approx(delta * 100, abs=1e-3)
    # The probe is off in this suite: skipped with the suite's reason, and recorded as skipped.
    reasons = {s["reason"] for s in data["quantbench"]["skipped"] if s["test"] == "test_fairness"}
    assert reasons == {"the suite turns the fairness probe off (fairness.probe: false)"}


def test_report_dir_and_gate_from_pytest(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    suite = tiny_suite(tiny_model, tiny_data, quantization=["fp32"], batch_sizes=[2])
    report_dir = pytester.path / "reports" / "run"
    result, data = run_sweep(pytester, suite, "--report-dir", str(report_dir))
    assert result.ret == 0
    assert (report_dir / "index.html").is_file() and (report_dir / "report.json").is_file()
    assert list((report_dir / "model_cards").glob("*.md"))
    # pytest-benchmark's own tool reads the file.
    import subprocess
    import sys

    compare = subprocess.run([sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare",
                              str(pytester.path / "results.json")], capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0 and "test_latency[tiny-toy-fp32-pytorch-cpu-bs2-seq16]" in compare.stdout
    # Plant a baseline that was 10 points more accurate: the gate must fail the pytest run.
    baseline = json.loads((pytester.path / "results.json").read_text())
    for bench in baseline["benchmarks"]:
        if bench["group"] == "accuracy":
            bench["extra_info"]["accuracy"] += 0.10
    (pytester.path / "baseline.json").write_text(json.dumps(baseline))
    result, _ = run_sweep(pytester, suite, "--gate-baseline", str(pytester.path / "baseline.json"))
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*accuracy*"])


def test_a_users_own_labels_get_accuracy_and_data_fairness_with_the_probe_off(pytester, bench_dir, tiny_model,
                                                                              isolated_cache):
    """Reviews labelled by stars ('1'/'5') with a region column: no label is named 'positive', so the
    sentiment probe is off (said once, as one skip reason), and accuracy and data fairness still run."""
    import random

    from tests.tiny import FILLER, NEGATIVE, POSITIVE

    rng = random.Random(5)
    lines = ["review,stars,region"]
    for i in range(200):
        good = rng.random() < 0.5
        words = [rng.choice(POSITIVE if good else NEGATIVE)] + rng.sample(FILLER, 4)
        lines.append(f"{' '.join(words)} {i},{5 if good else 1},{'north' if i % 2 else 'south'}")
    reviews = pytester.path / "reviews.csv"
    reviews.write_text("\n".join(lines) + "\n")
    suite = tiny_suite(tiny_model, reviews, quantization=["fp32", "dynamic_int8"], batch_sizes=[1, 4])
    suite["dataset"] = {"name": "reviews", "source": "csv", "path": str(reviews), "text_column": "review",
                        "label_column": "stars", "label_map": {"1": 0, "5": 1}, "sensitive_columns": ["region"],
                        "max_samples": 60}
    suite["fairness"] = {"probe": True}
    result, data = run_sweep(pytester, suite)
    assert result.ret == 0, result.stdout.str()[-3000:]
    acc = {b["params"]["quant"]: b["extra_info"] for b in data["benchmarks"] if b["group"] == "accuracy"}
    assert set(acc) == {"fp32", "dynamic_int8"}
    for figures in acc.values():
        assert 0.0 <= figures["accuracy"] <= 1.0 and len(figures["accuracy_ci95"]) == 2
        assert figures["data_dp_difference"] is not None and "data_dp_difference_ci95" in figures
        assert set(figures["fairness_data"]["by_attribute"]["region"]["by_group"]) == {"north", "south"}
        assert "binary labels" in figures["fairness_data"]["positive_label_from"]
    skipped = [s for s in data["quantbench"]["skipped"] if s["test"] == "test_fairness"]
    assert len(skipped) == 2 and len({s["reason"] for s in skipped}) == 1
    assert "no label is named 'positive'" in skipped[0]["reason"] and "fairness.positive_label" in skipped[0]["reason"]
    summary = result.stdout.str()
    assert summary.count("the fairness probe is about sentiment") == 1


def test_a_positive_label_the_dataset_lacks_is_one_clear_line(pytester, bench_dir, tiny_model, tiny_data,
                                                              isolated_cache):
    suite = tiny_suite(tiny_model, tiny_data, quantization=["fp32"])
    suite["fairness"] = {"probe": True, "positive_label": "good"}
    result, data = run_sweep(pytester, suite, "-k", "accuracy or fairness")
    out = result.stdout.str()
    assert "fairness.positive_label: 'good' is not one of the dataset's labels ['negative', 'positive']" in out
