"""``measure.processes``: a cell's rounds in the harness's process and fresh workers, end to end on a
tiny model (runner/process_timing.py, measures/processes.py)."""

from __future__ import annotations

from quantbench.runner.process_timing import SLOW_ENV
from tests.plugin.test_sweep import run_sweep
from tests.tiny import tiny_suite


def test_each_process_is_recorded_and_its_rounds_join_the_cell(pytester, bench_dir, tiny_model, tiny_data,
                                                               isolated_cache, monkeypatch):
    # The dynamic int8 variant's workers sleep 30 ms a round: their processes must show it, the
    # harness's must not, and the variance must then lie between processes.
    monkeypatch.setenv(SLOW_ENV, "tiny-toy-dynamic_int8-pytorch-cpu=0.03")
    suite = tiny_suite(tiny_model, tiny_data, batch_sizes=[2])
    suite["measure"].update(max_rounds=6)
    # --processes sets the count without editing the suite.
    result, data = run_sweep(pytester, suite, "-k", "test_latency", "--processes", "3")
    assert result.ret == 0, result.stdout.str()[-2000:]
    cells = {b["param"]: b for b in data["benchmarks"] if b["name"].startswith("test_latency")}
    assert set(cells) == {"tiny-toy-fp32-pytorch-cpu-bs2-seq16", "tiny-toy-dynamic_int8-pytorch-cpu-bs2-seq16"}
    for bench in cells.values():
        extra = bench["extra_info"]
        procs = extra["processes"]
        assert [p["origin"] for p in procs] == ["harness", "worker", "worker"]
        assert len({p["pid"] for p in procs}) == 3  # three processes, none of them reused
        # Every process's rounds are in pytest-benchmark's stats, each with its reference time.
        assert sum(p["rounds"] for p in procs) == bench["stats"]["rounds"] == extra["rounds"]
        assert len(extra["reference_s"]) == bench["stats"]["rounds"]
        assert all(p["reference_median_ms"] > 0 for p in procs)
        assert extra["process_stop"] == "process cap" and extra["process_interval_ms"][0] > 0
    slow = cells["tiny-toy-dynamic_int8-pytorch-cpu-bs2-seq16"]["extra_info"]
    harness, *workers = slow["processes"]
    assert all(w["median_ms"] > harness["median_ms"] + 25 for w in workers)
    assert slow["process_variance"]["between_share"] > 0.9
    fast = cells["tiny-toy-fp32-pytorch-cpu-bs2-seq16"]["extra_info"]
    assert all(p["median_ms"] < harness["median_ms"] + 25 for p in fast["processes"])
    # The end-of-run summary says where the variance lies.
    result.stdout.fnmatch_lines(["*processes: 2 cell(s) timed in 3 processes*between processes*"])


def test_a_generation_cell_says_it_took_one_process(pytester, bench_dir, tiny_llama, tiny_data, isolated_cache):
    from tests.plugin.test_generation_sweep import llm_suite

    suite = llm_suite(tiny_llama, tiny_data, quantization=["fp32"], batch_sizes=[1])
    suite["measure"].update(processes=2, max_processes=2)
    result, data = run_sweep(pytester, suite, "-k", "test_generation")
    assert result.ret == 0, result.stdout.str()[-2000:]
    gen = [b for b in data["benchmarks"] if b["name"].startswith("test_generation")]
    assert gen and all("not taken: a generation cell" in b["extra_info"]["process_repetition"] for b in gen)
