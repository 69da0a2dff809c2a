"""``pytest bench/ --history URL_OR_PATH``: a sweep adds its own run to the history store, with this machine's
fingerprint; without a run file it says why; a store it cannot use stops it before it measures anything."""

from __future__ import annotations

import json

import pytest

from tests.tiny import tiny_suite, write_suite

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")


def test_a_sweep_adds_itself_to_the_history(pytester, bench_dir, tiny_model, tiny_data, isolated_cache, monkeypatch):
    from quantbench.history import fingerprint, open_store

    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    suite = write_suite(pytester.path / "suite.yaml", tiny_suite(tiny_model, tiny_data, quantization=["fp32"],
                                                                 batch_sizes=[1]))
    out, db = pytester.path / "results.json", pytester.path / "history" / "runs.sqlite"
    result = pytester.runpytest_subprocess("bench/test_performance.py", "--suite", str(suite), "-p", "no:cacheprovider",
                                           "--benchmark-json", str(out), "--history", str(db))
    assert result.ret == 0, result.stdout.str()[-3000:]
    this = fingerprint.this_machine()
    result.stdout.fnmatch_lines([f"quantbench history: added run 1 to {db} · machine {this.id} · 1 cells"])
    with open_store(db) as store:
        (run,) = store.runs()
        assert run.machine_id == this.id  # the run's recorded machine_info gives the live machine's id
        assert run.suite == "tiny" and store.run_data(run.id) == json.loads(out.read_text())
        (value,) = store.values("test_latency[tiny-toy-fp32-pytorch-cpu-bs1-seq16]", "latency_p50_ms")
        assert value.value > 0 and value.samples >= 3 and value.direction == "lower"


def test_without_a_run_file_it_says_why(pytester, monkeypatch):
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--history", str(pytester.path / "h.sqlite"))
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["quantbench history: run not stored: the history keeps the run file, and there is "
                                 "none: give --benchmark-json PATH (or --report-dir DIR) with --history"])


def test_a_store_it_cannot_use_stops_the_sweep_before_it_starts(pytester, monkeypatch):
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--history", "mysql://u@h/db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--history: unknown database URL scheme 'mysql'*"])
    assert "test_nothing" not in result.stdout.str()
