"""The history on real runs: the ten `ci` suite runs of this repository in docs/runs/history/ (two commits,
interleaved by `quantbench ab`, one machine), stored in SQLite and in PostgreSQL through the CLI, drawn as the
trend page and read in headless Chromium, and judged by `quantbench gate --history`.

The synthetic histories (tests/unit/history) check the statistics against a known truth; this checks that
what a real sweep writes goes through every step: ingest, fingerprints, commit order, series, the page, the gate.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from quantbench import cli

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402
from quantbench.history.series import build  # noqa: E402
from tests.unit.history import postgres  # noqa: E402
from tests.unit.history.test_history_gate import scale_cell  # noqa: E402
from tests.unit.history.test_trend_page import load  # noqa: E402

RUNS = sorted((Path(__file__).resolve().parents[2] / "docs" / "runs" / "history").glob("*.json"))


def commit_of(path: Path) -> str:
    return json.loads(path.read_text(encoding="utf-8"))["commit_info"]["id"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    try:
        server = postgres.start()
    except postgres.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server can start here: {exc}")
    request.addfinalizer(server.stop)
    return postgres.create_database(server, f"quantbench_real_{os.getpid()}")


def test_the_shipped_runs_are_ten_runs_of_two_commits_on_one_machine():
    assert len(RUNS) >= 10
    assert len({commit_of(p) for p in RUNS}) >= 2


def test_ten_real_runs_stored_drawn_and_read_in_chromium(db, tmp_path, capsys):
    assert cli.main(["history", "add", "--db", db, *map(str, RUNS)]) == 0
    # Adding them again stores nothing new: a run is kept once, by content.
    assert cli.main(["history", "add", "--db", db, *map(str, RUNS)]) == 0
    with open_store(db) as store:
        history = build(store)
    commits = {commit_of(p) for p in RUNS}
    assert set(history.commits) == commits and len(history.machines) == 1
    timed = [s for s in history.series if s.metric == "latency_p50_ms"]
    assert timed, "no latency series"
    for series in timed:
        # Every run is a point's run: ten values, each commit's mean over its own runs.
        assert sum(len(p.runs) for p in series.points) == len(RUNS), series.cell
        assert {p.commit for p in series.points} == commits
    capsys.readouterr()
    assert cli.main(["history", "report", "--db", db, "-o", str(tmp_path / "trend")]) == 0
    assert f"over {len(commits)} commit(s)" in capsys.readouterr().out
    page = tmp_path / "trend" / "index.html"
    from tests.browser.test_report_browser import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    selfcheck, trendcheck, console = load(page)
    assert console == [] and selfcheck is not None and selfcheck["errors"] == []
    charts = trendcheck["charts"]
    assert len(charts) == len(history.series)
    for chart in charts:
        # One machine: one line through both commits, laid out.
        (line,) = chart["lines"]
        assert line["points"] == len(commits) and line["width"] > 200, chart["id"]


def _held_out_history(tmp_path: Path) -> tuple[str, Path]:
    """Nine runs in a store, and the tenth (the head commit's last run) held out to be judged."""
    db = str(tmp_path / "history.sqlite")
    head = commit_of(RUNS[-1])
    last = max((p for p in RUNS if commit_of(p) == head),
               key=lambda p: json.loads(p.read_text(encoding="utf-8"))["datetime"])
    assert cli.main(["history", "add", "--db", db, *(str(p) for p in RUNS if p != last)]) == 0
    return db, last


def test_the_history_gate_passes_a_real_run_and_fails_it_with_one_cell_slower(tmp_path, capsys):
    db, held_out = _held_out_history(tmp_path)
    # A run of a commit already in the history, judged against the nine others: it passes.
    assert cli.main(["gate", "--history", db, str(held_out)]) == 0, capsys.readouterr().out
    # The same run with one timed cell 40 % slower (its rounds, percentiles and throughput): it fails, on that cell.
    run = json.loads(held_out.read_text(encoding="utf-8"))
    cell = next(b["name"] for b in run["benchmarks"] if b["name"].startswith("test_latency["))
    slower = copy.deepcopy(run)
    scale_cell(slower, cell, 1.4)
    path = tmp_path / "slower.json"
    path.write_text(json.dumps(slower), encoding="utf-8")
    capsys.readouterr()
    assert cli.main(["gate", "--history", db, str(path)]) == 1
    out = capsys.readouterr().out
    assert cell in out and "regression" in out.lower()
