"""Robust sweeps: one bad cell fails alone, a killed sweep resumes, shards add up, workers die loudly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.plugin.test_sweep import run_sweep
from tests.tiny import tiny_suite, worker_memory, write_suite


def twenty_cells(model, data):
    # 2 variants x 5 batch sizes x 2 sequence lengths = 20 latency cells.
    return tiny_suite(model, data, batch_sizes=[1, 2, 3, 4, 5], seq_lens=[8, 16],
                      measure={"warmup_rounds": 1, "min_rounds": 3, "max_rounds": 3, "min_time_s": 0.0,
                               "max_time_s": 1.0, "eval_batch_size": 16})


def test_one_failing_cell_fails_alone(pytester, bench_dir, tiny_model, tiny_data, isolated_cache, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_INJECT_OOM", "tiny-toy-dynamic_int8-pytorch-cpu-bs3-seq16")
    result, data = run_sweep(pytester, twenty_cells(tiny_model, tiny_data), "-k", "test_latency")
    latency = [b for b in data["benchmarks"] if b["group"] == "latency"]
    assert len(latency) == 19
    failed = data["quantbench"]["failed"]
    assert [f["cell_id"] for f in failed] == ["tiny-toy-dynamic_int8-pytorch-cpu-bs3-seq16"]
    assert "MemoryError: injected fault" in failed[0]["reason"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Variants are released as the sweep moves on: the harness's own memory stays flat.
    rss = [b["extra_info"]["harness_rss_mb"] for b in latency]
    assert max(rss[1:]) - rss[1] < 50, rss
    # Shown at the end, in one line.
    result.stdout.fnmatch_lines(["FAILED test_latency?tiny-toy-dynamic_int8-pytorch-cpu-bs3-seq16?: MemoryError*"])


def test_killed_sweep_resumes_to_a_complete_duplicate_free_result(pytester, bench_dir, tiny_model, tiny_data,
                                                                  isolated_cache):
    suite_path = write_suite(pytester.path / "suite.yaml", twenty_cells(tiny_model, tiny_data))
    out, journal = pytester.path / "results.json", pytester.path / "results.jsonl"
    args = [sys.executable, "-m", "pytest", "bench", "--suite", str(suite_path), "--benchmark-json", str(out),
            "-p", "no:cacheprovider", "-q", "-k", "test_latency"]
    proc = subprocess.Popen(args, cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no JSON: only the journal survives
    proc.wait()
    done_before = len(journal.read_text().splitlines())
    assert 5 <= done_before < 20 and not out.exists()

    resumed = subprocess.run(args + ["--resume"], cwd=pytester.path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    data = json.loads(out.read_text())
    names = [b["name"] for b in data["benchmarks"]]
    assert len(names) == len(set(names)) == 20
    # The resumed run ran only what was missing.
    assert f"{done_before} deselected" in resumed.stdout or f"{20 - done_before} passed" in resumed.stdout


def test_shards_partition_the_sweep(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    suite_path = write_suite(pytester.path / "suite.yaml", twenty_cells(tiny_model, tiny_data))

    def collected(*extra):
        result = pytester.runpytest_subprocess("bench", "--suite", str(suite_path), "--collect-only", "-q",
                                               "-p", "no:cacheprovider", *extra)
        return {line for line in result.stdout.lines if "::" in line}

    full = collected()
    shards = [collected("--shard", f"{k}/3") for k in (1, 2, 3)]
    assert set().union(*shards) == full
    assert sum(len(s) for s in shards) == len(full)  # no overlaps
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # even
    assert shards[0] == collected("--shard", "1/3")  # stable


def test_bad_shard_is_one_line(pytester, bench_dir, tiny_model, tiny_data, isolated_cache):
    result, _ = run_sweep(pytester, tiny_suite(tiny_model, tiny_data), "--shard", "4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*Exit: quantbench: --shard 4/3: K must be between 1 and N*"])


def test_dead_memory_worker_fails_its_cells_and_the_sweep_goes_on(pytester, bench_dir, tiny_model, tiny_data,
                                                                  isolated_cache, monkeypatch):
    monkeypatch.setenv("QUANTBENCH_TEST_CRASH_WORKER", "tiny-toy-fp32-pytorch-cpu")
    started = time.monotonic()
    result, data = run_sweep(pytester, worker_memory(tiny_suite(tiny_model, tiny_data)), "-k", "test_latency")
    assert time.monotonic() - started < 300  # reported, not hung on
    failed = {f["cell_id"]: f["reason"] for f in data["quantbench"]["failed"]}
    assert set(failed) == {"tiny-toy-fp32-pytorch-cpu-bs1-seq16", "tiny-toy-fp32-pytorch-cpu-bs4-seq16"}
    assert all("died with exit code 13" in reason for reason in failed.values())
    assert {b["param"] for b in data["benchmarks"]} == {"tiny-toy-dynamic_int8-pytorch-cpu-bs1-seq16",
                                                        "tiny-toy-dynamic_int8-pytorch-cpu-bs4-seq16"}


def test_thousand_cells_collect(pytester, bench_dir, tiny_model, tiny_data, isolated_cache, benchmark):
    suite = tiny_suite(tiny_model, tiny_data, quantization=["fp32", "bf16", "dynamic_int8", "static_int8", "nf4",
                                                            "bnb_int8"],
                       backends=["pytorch", "onnxruntime"], batch_sizes=list(range(1, 26)),
                       seq_lens=[16, 32, 48, 64, 80])
    suite_path = write_suite(pytester.path / "suite.yaml", suite)

    def collect():
        return pytester.runpytest_subprocess("bench/test_performance.py", "--suite", str(suite_path),
                                             "--collect-only", "-q", "-p", "no:cacheprovider")

    result = benchmark.pedantic(collect, rounds=1, iterations=1)
    # 8 CPU variants (5 pytorch, 3 onnxruntime) x 25 batch sizes x 5 sequence lengths.
    result.stdout.fnmatch_lines(["1000 tests collected in *s"])
    line = next(line for line in result.stdout.lines if "tests collected in" in line)
    benchmark.extra_info["collect_seconds"] = float(line.split(" in ")[1].rstrip("s"))
