"""The gate against the history (``quantbench gate --history DB RUN.json``): a run judged against the last runs
of each cell on its own machine fingerprint, stored in a real database (gate/history.py, gate/lookback.py)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantbench import cli
from quantbench.errors import QuantbenchError
from quantbench.gate import verdicts as V
from quantbench.gate.lookback import HEAD_MIN_SIZE, judge, robust_spread, worse_z
from quantbench.gate.policy import DEFAULT_RULES
from tests.unit.history.factory import machine_info, run_on

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.gate.history import gate_history  # noqa: E402
from quantbench.history import open_store  # noqa: E402
from quantbench.history.fingerprint import from_machine_info  # noqa: E402

INT8 = "test_latency[minilm-tweets-dynamic_int8-pytorch-cpu-bs1-seq64]"
FP32 = "test_latency[minilm-tweets-fp32-pytorch-cpu-bs1-seq64]"
ACC_INT8 = "test_accuracy[minilm-tweets-dynamic_int8-pytorch-cpu]"
LATENCY_CELLS = (INT8, FP32)
#: Between-run noise of a cell (the sd of log values), as measured on the 2-core VMs (docs/history.md: 3.4 %).
NOISE = 0.034
XEON = machine_info(cpu_model="Intel(R) Xeon(R) Processor", vendor="GenuineIntel", family=6, model=167,
                    flags=("fpu", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_tile"))


def commit(i: int) -> str:
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


def scale_cell(run: dict, name: str, factor: float) -> None:
    """Make one latency cell ``factor`` times slower (its rounds, percentiles and throughputs)."""
    for bench in run["benchmarks"]:
        if bench["name"] == name:
            bench["stats"]["data"] = [x * factor for x in bench["stats"]["data"]]
            extra = bench["extra_info"]
            extra["latency_ms"] = {k: v * factor for k, v in extra["latency_ms"].items()}
            for key in ("throughput_samples_per_s", "throughput_tokens_per_s"):
                extra[key] /= factor
            return
    raise AssertionError(f"no cell {name}")


def run(i: int, *, slower: float = 1.0, info: dict | None = None, commit_id: str | None = None,
        accuracy: float = 0.90, noise_seed: int | None = None) -> dict:
    """Run ``i`` of a history: commit ``commit(i)`` an hour after run ``i - 1``'s, every latency cell moved by
    between-run noise, the int8 cell ``slower`` times slower, the int8 accuracy ``accuracy``."""
    rng = random.Random(10_000 + (i if noise_seed is None else noise_seed))
    when = f"2026-12-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00"
    data = run_on(info, seed=i, commit=commit_id or commit(i), commit_time=when,
                  run_time=when.replace(":00:00+", ":30:00+"), accuracy={"dynamic_int8": accuracy})
    for name in LATENCY_CELLS:
        scale_cell(data, name, math.exp(rng.gauss(0, NOISE)) * (slower if name == INT8 else 1.0))
    return data


def store_runs(db: str, runs: list[dict]) -> None:
    with open_store(db) as store:
        for data in runs:
            store.add(data)


def rows_of(result, verdict: str) -> set[tuple[str, str | None]]:
    return {(row.cell, row.metric) for row in result.rows if row.verdict == verdict}


def detail(result, cell: str, metric: str) -> dict:
    found = [d for row, d in zip(result.rows, result.details) if row.cell == cell and row.metric == metric]
    assert len(found) == 1, (cell, metric)
    return found[0]


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "history.sqlite")


@pytest.fixture
def ten_runs(db) -> str:
    """Ten runs of ten commits on one machine, with between-run noise."""
    store_runs(db, [run(i) for i in range(10)])
    return db


def test_a_cell_40_percent_slower_fails_naming_the_cell_and_the_metric(db_url):
    store_runs(db_url, [run(i) for i in range(10)])
    result = gate_history(run(10, slower=1.4), db_url)
    assert result.exit_code == 1 and not result.passed
    regressions = rows_of(result, V.REGRESSION)
    # Latency up, and throughput (bigger is better) down: both regressions of the int8 cell, nothing else.
    assert {(INT8, "latency_p50_ms"), (INT8, "throughput_samples_per_s")} <= regressions
    assert {cell for cell, _ in regressions} == {INT8}
    p50 = next(r for r in result.rows if r.cell == INT8 and r.metric == "latency_p50_ms")
    assert p50.outcome == V.FAIL and p50.change == pytest.approx(0.4, abs=0.08) and p50.threshold == 0.10
    assert "outside the history" in p50.note and "over the last 10 runs" in p50.note
    assert detail(result, INT8, "latency_p50_ms")["z"] > 5
    assert all(r.verdict == V.PASS for r in result.rows if r.cell == FP32)
    table = result.render_table()
    assert INT8 in table and "latency_p50_ms" in table and "REGRESSION" in table
    assert table.splitlines()[-1].startswith("quantbench gate: FAIL")
    assert f"{INT8} latency_p50_ms regression" in result.summary()


def test_a_run_of_the_same_commit_from_the_same_distribution_passes(ten_runs):
    result = gate_history(run(10, commit_id=commit(9)), ten_runs)
    assert result.passed and result.exit_code == 0
    assert not rows_of(result, V.REGRESSION) and not rows_of(result, V.INSUFFICIENT)
    assert all(abs(detail(result, cell, "latency_p50_ms")["z"]) < 5 for cell in LATENCY_CELLS)
    assert result.history["commit"] == commit(9) and result.history["machine_runs"] == 10


def test_a_bigger_is_better_metric_falling_fails_and_rising_is_an_improvement(ten_runs):
    worse = gate_history(run(10, accuracy=0.85), ten_runs)
    assert worse.exit_code == 1
    assert rows_of(worse, V.REGRESSION) == {(ACC_INT8, "accuracy"), (ACC_INT8, "f1_macro")}
    row = next(r for r in worse.rows if r.cell == ACC_INT8 and r.metric == "accuracy")
    # An accuracy on a fixed split does not move between runs: the window has no spread, any move is outside it.
    assert row.change == pytest.approx(-0.05) and row.better == "higher" and row.baseline == pytest.approx(0.90)
    assert "z +inf" in row.note and "-5.00 pts" in worse.render_table()
    better = gate_history(run(10, accuracy=0.95), ten_runs)
    assert better.passed and (ACC_INT8, "accuracy") in rows_of(better, V.IMPROVEMENT)


def test_a_step_that_began_three_commits_ago_is_reported_with_that_commit(db):
    store_runs(db, [run(i, slower=1.4 if i >= 9 else 1.0) for i in range(12)])
    result = gate_history(run(12, slower=1.4), db)
    assert result.exit_code == 1
    step = detail(result, INT8, "latency_p50_ms")["change_point"]
    assert step["commit"] == commit(9) and step["commits_before"] == 3
    assert step["rel_step"] == pytest.approx(0.4, abs=0.08) and step["verdict"] == V.REGRESSION
    assert step["interval"][0] > 0.10  # its whole interval past the threshold
    row = next(r for r in result.rows if r.cell == INT8 and r.metric == "latency_p50_ms")
    assert row.verdict == V.REGRESSION
    assert f"a new level since commit {commit(9)[:12]} (3 commits before this run)" in row.note
    assert detail(result, FP32, "latency_p50_ms")["change_point"] is None


def test_a_step_the_window_already_half_holds_is_still_a_regression_by_its_change_point(db):
    """Six of the last ten runs at the new level: the window's median has moved and the run alone is inside its
    spread, but the level it is on began at a step the gate names."""
    store_runs(db, [run(i, slower=1.4 if i >= 6 else 1.0) for i in range(12)])
    result = gate_history(run(12, slower=1.4), db)
    row = next(r for r in result.rows if r.cell == INT8 and r.metric == "latency_p50_ms")
    found = detail(result, INT8, "latency_p50_ms")
    assert row.verdict == V.REGRESSION and found["decided_by"] == "change point"
    assert abs(found["z"]) < 5  # the z-score alone would pass it
    assert found["change_point"]["commit"] == commit(6) and found["change_point"]["commits_before"] == 6
    assert row.change == pytest.approx(0.4, abs=0.08) and row.ci[0] > 0.10 and row.p_value <= 0.02
    assert row.baseline == pytest.approx(found["change_point"]["mean_before"])


def test_a_step_accepted_with_since_is_no_longer_judged(db):
    store_runs(db, [run(i, slower=1.4 if i >= 6 else 1.0) for i in range(12)])
    accepted = gate_history(run(12, slower=1.4), db, since=commit(6)[:8])
    assert accepted.passed and not rows_of(accepted, V.REGRESSION) and not rows_of(accepted, V.INSUFFICIENT)
    assert accepted.history["since"] == commit(6) and accepted.history["machine_runs"] == 6
    assert f"--since {commit(6)[:8]}: the history starts at commit {commit(6)}; 6 earlier run(s)" in \
        accepted.warnings[0]
    assert detail(accepted, INT8, "latency_p50_ms")["change_point"] is None
    with pytest.raises(QuantbenchError, match="--since feedface: no run of a commit starting with 'feedface'"):
        gate_history(run(12), db, since="feedface")


def test_insufficient_history_is_reported_with_its_count(db, tmp_path):
    store_runs(db, [run(i) for i in range(3)])
    result = gate_history(run(3, slower=1.4), db)
    assert result.passed  # the policy's on_insufficient: warn
    rows = [r for r in result.rows if r.verdict == V.INSUFFICIENT]
    assert rows and len(rows) == len(result.rows) and all(r.outcome == V.WARN for r in rows)
    # One row per cell whose every gated metric lacks history.
    assert {r.cell for r in rows} == {r.cell for r in result.rows} and all(r.metric is None for r in rows)
    assert all("3 runs of this cell on this machine" in r.note and "the gate needs 5" in r.note for r in rows)
    strict = gate_history(run(3, slower=1.4), db, {"on_insufficient": "fail"})
    assert strict.exit_code == 1 and all(r.outcome == V.FAIL for r in strict.rows)
    judged = gate_history(run(3, slower=1.4), db, min_history=3)  # three runs are enough when asked
    assert (INT8, "latency_p50_ms") in rows_of(judged, V.REGRESSION)


def test_runs_of_other_machines_are_ignored_and_counted(ten_runs):
    # A faster machine (an AVX-512 Xeon) with four runs: its cells twice as fast.
    xeon_runs = [run(20 + i, info=XEON) for i in range(4)]
    for data in xeon_runs:
        for name in LATENCY_CELLS:
            scale_cell(data, name, 0.5)
    store_runs(ten_runs, xeon_runs)
    xeon_id, zen3_id = from_machine_info(XEON).id, from_machine_info(machine_info()).id
    assert xeon_id != zen3_id

    zen3 = gate_history(run(30), ten_runs)  # the Xeon's fast runs would make it look slow
    assert zen3.passed and zen3.history["machine"] == zen3_id
    assert zen3.history["other_machine_runs"] == {xeon_id: 4}
    assert f"4 stored runs from 1 other machine ignored ({xeon_id}: 4 runs)" in zen3.warnings[0]
    assert detail(zen3, INT8, "latency_p50_ms")["other_machine_runs"] == 4
    assert detail(zen3, INT8, "latency_p50_ms")["history_runs"] == 10

    xeon = run(31, info=XEON)
    for name in LATENCY_CELLS:
        scale_cell(xeon, name, 0.5)
    result = gate_history(xeon, ten_runs)  # four runs of its own: not enough, whatever the Zen 3 holds
    assert result.history["other_machine_runs"] == {zen3_id: 10}
    assert all(r.verdict == V.INSUFFICIENT for r in result.rows)
    assert all("4 runs of this cell on this machine" in r.note and "10 on other machines ignored" in r.note
               for r in result.rows)


def test_a_run_already_stored_is_left_out_of_its_own_history(ten_runs):
    slow = run(10, slower=1.4)
    with open_store(ten_runs) as store:
        run_id = store.add(slow).run_id
        result = gate_history(slow, store)  # an open store works as well as a path
    assert f"this run is stored in {ten_runs} as run {run_id}: left out of its own history" in result.warnings
    assert result.history["left_out_run"] == run_id
    assert detail(result, INT8, "latency_p50_ms")["history_runs"] == 10
    assert (INT8, "latency_p50_ms") in rows_of(result, V.REGRESSION)


def test_a_failed_cell_the_history_holds_fails(ten_runs):
    data = run(10)
    bench = next(b for b in data["benchmarks"] if b["name"] == INT8)
    data["benchmarks"].remove(bench)
    data["quantbench"]["failed"] = [{"test": "test_latency", "cell_id": bench["param"], "params": bench["params"],
                                     "reason": "RuntimeError: boom"}]
    result = gate_history(data, ten_runs)
    assert result.exit_code == 1
    row = next(r for r in result.rows if r.verdict == V.FAILED)
    assert row.cell == INT8 and row.outcome == V.FAIL and "boom" in row.note


def test_json_and_markdown_carry_the_history(ten_runs):
    result = gate_history(run(10, slower=1.4), ten_runs)
    data = json.loads(result.to_json())
    assert data["exit_code"] == 1 and data["schema_version"] == 1
    assert data["history"]["lookback"] == 10 and data["history"]["min_history"] == 5
    assert data["history"]["z_threshold"] == 5 and data["history"]["database"] == ten_runs
    row = next(r for r in data["rows"] if r["cell"] == INT8 and r["metric"] == "latency_p50_ms")
    assert row["verdict"] == "regression" and row["decided_by"] == "z-score" and row["z"] > 5
    assert row["window"]["runs"] == 10 and row["window"]["last_commit"] == commit(9)
    acc = next(r for r in data["rows"] if r["cell"] == ACC_INT8 and r["metric"] == "accuracy")
    assert acc["z"] == 0 and acc["window"]["scale"] == "no spread"
    markdown = result.to_markdown()
    assert "| cell | metric |" in markdown and INT8 in markdown and "REGRESSION" in markdown


def test_bad_settings_are_refused_in_one_line(ten_runs):
    with pytest.raises(QuantbenchError, match=r"--lookback 3: must be an integer >= --min-history \(5\)"):
        gate_history(run(10), ten_runs, lookback=3)
    with pytest.raises(QuantbenchError, match="--min-history 2"):
        gate_history(run(10), ten_runs, min_history=2, lookback=10)
    with pytest.raises(QuantbenchError, match="--z 0"):
        gate_history(run(10), ten_runs, z_threshold=0)


# -- the arithmetic, without a database -------------------------------------------------------------------------

P50 = next(rule for rule in DEFAULT_RULES if rule.metrics == ("latency_p50_ms",))


def test_the_spread_is_robust_to_slow_runs_in_the_window():
    """Two slow spells (+30 %) in ten runs: a mean and a standard deviation would take a +40 % run for noise
    (z 2.8); the median and the MAD do not move."""
    rng = random.Random(3)
    window = [100 * math.exp(rng.gauss(0, NOISE)) for _ in range(8)] + [130.0, 131.0]
    mean = sum(window) / len(window)
    sd = math.sqrt(sum((v - mean) ** 2 for v in window) / (len(window) - 1))
    assert (140 - mean) / sd < 5
    spread = robust_spread(window)
    assert spread.method == "MAD" and spread.center == pytest.approx(100, abs=4) and spread.scale < 6
    found = judge(140.0, window, [f"c{i}" for i in range(10)], "c10", metric="latency_p50_ms", rule=P50)
    assert found.verdict == V.REGRESSION and found.z > 5


def test_spread_fallbacks_and_the_sign_of_z():
    assert robust_spread([1.0, 1.0, 1.0, 1.0, 2.0]).method == "mean absolute deviation"
    flat = robust_spread([5.0] * 6)
    assert flat.method == "no spread" and flat.scale == 0
    assert worse_z(5.0, flat, "lower") == 0 and worse_z(6.0, flat, "lower") == math.inf
    assert worse_z(6.0, flat, "higher") == -math.inf  # higher is better: up is an improvement
    spread = robust_spread([10.0, 11.0, 9.0, 10.0, 10.0])
    assert worse_z(12.0, spread, "lower") > 0 > worse_z(12.0, spread, "higher")


def test_a_change_past_the_threshold_inside_the_spread_is_within_noise():
    """A cell that moves 15 % from run to run: a run 12 % slower is past the 10 % threshold but inside the history."""
    rng = random.Random(5)
    window = [100 * math.exp(rng.gauss(0, 0.15)) for _ in range(10)]
    center = robust_spread(window).center
    found = judge(center * 1.12, window, [f"c{i}" for i in range(10)], "c10", metric="latency_p50_ms", rule=P50)
    assert found.verdict == V.NOISE and "within the history's spread" in found.note and found.z < 5


def test_too_few_commits_for_the_change_point_test_leave_it_to_the_z_score():
    window = [100.0, 101.0, 99.0, 100.5, 99.5]
    found = judge(140.0, window, ["a"] * 5, "a", metric="latency_p50_ms", rule=P50)
    assert found.verdict == V.REGRESSION and found.step is None
    assert "no step before this run" not in found.note  # one commit, fewer than 2 x HEAD_MIN_SIZE: nothing to test
    assert HEAD_MIN_SIZE == 3


# -- the command line ------------------------------------------------------------------------------------------

def _entry_point() -> list[str]:
    script = Path(sys.executable).with_name("quantbench")
    found = str(script) if script.exists() else shutil.which("quantbench")
    if not found:
        pytest.skip("the quantbench console script is not installed (pip install -e .)")
    return [found]


def _write(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_the_installed_command_fails_a_step_outside_the_history_and_passes_a_run_of_the_same_commit(tmp_path):
    files = [_write(tmp_path / f"run-{i}.json", run(i)) for i in range(10)]
    db = str(tmp_path / "h.sqlite")
    env = {**os.environ, "QUANTBENCH_HISTORY": ""}

    def quantbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*_entry_point(), *args], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                              env=env)

    added = quantbench("history", "add", "--db", db, *files)
    assert added.returncode == 0, added.stderr
    slow = _write(tmp_path / "slow.json", run(10, slower=1.4))
    failed = quantbench("gate", "--history", db, slow, "--json", "gate.json", "--markdown", "gate.md")
    assert failed.returncode == 1, failed.stderr
    assert INT8 in failed.stdout and "latency_p50_ms" in failed.stdout and "REGRESSION" in failed.stdout
    assert failed.stdout.strip().splitlines()[-1].startswith("quantbench gate: FAIL")
    verdict = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["exit_code"] == 1 and verdict["history"]["machine_runs"] == 10
    assert "REGRESSION" in (tmp_path / "gate.md").read_text()

    same = _write(tmp_path / "same.json", run(10, commit_id=commit(9)))
    passed = quantbench("gate", "--history", db, same, "--lookback", "8")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "the last 8 runs of each cell" in passed.stdout
    assert passed.stdout.strip().splitlines()[-1].startswith("quantbench gate: PASS")


@pytest.fixture
def gate_only(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("quantbench.gate.commands",))


def test_history_gate_options_need_the_history_gate(gate_only, ten_runs, tmp_path, capsys):
    current = _write(tmp_path / "cur.json", run(10))
    assert cli.main(["gate", "--lookback", "5", current, current]) == 2
    assert "--lookback: only for the gate against the history" in capsys.readouterr().err
    assert cli.main(["gate", "--history", ten_runs, "--baseline-name", "main", "--z", "4", current]) == 2
    assert "--z: only for the gate against the history" in capsys.readouterr().err
    assert cli.main(["gate", "--history", ten_runs, current, current]) == 2
    assert "give only CURRENT.json, got 2 files" in capsys.readouterr().err
    assert cli.main(["gate", "--history", ten_runs, "--lookback", "3", current]) == 2
    assert "--lookback 3: must be an integer >= --min-history (5)" in capsys.readouterr().err
    assert cli.main(["gate", "--history", ten_runs, "--min-history", "3", "--lookback", "4", "--z", "4",
                     "--since", commit(0), current]) == 0
    assert "the last 4 runs of each cell" in capsys.readouterr().out
