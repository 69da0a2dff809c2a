"""The plugin's end-of-session step (``--history``) without a sweep: a parsed pytest config, a run file pytest-
benchmark would have written, and a store that works, or fails without costing the run file."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from quantbench.plugin import history
from quantbench.plugin.state import state
from quantbench.results import Run
from tests.unit.history.factory import run_on

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402


@pytest.fixture
def finished(pytester, tmp_path, monkeypatch):
    """(session, lines written, the run file) for a session given ``--history DB`` and ``--benchmark-json``."""
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)

    def make(db: str):
        out = tmp_path / "results.json"
        out.write_text(json.dumps(run_on()))
        config = pytester.parseconfig("--history", db, "--benchmark-json", str(out))
        state(config).output_path = str(out)
        lines: list[str] = []
        return SimpleNamespace(config=config, exitstatus=0), lines, out
    return make


def test_the_run_is_added_once_and_the_line_says_so(finished, tmp_path):
    db = str(tmp_path / "h.sqlite")
    session, lines, out = finished(db)
    history.add_run(session, lines.append)
    history.add_run(session, lines.append)
    assert lines[0].startswith(f"quantbench history: added run 1 to {db} · machine ")
    assert lines[1].startswith(f"quantbench history: run already stored as 1 in {db} · machine ")
    assert session.exitstatus == 0


def test_a_store_error_keeps_the_run_file_and_says_how_to_add_it_later(finished, tmp_path):
    db = tmp_path / "h.sqlite"
    session, lines, out = finished(str(db))
    db.write_text("not a database")  # broken after the start-up check
    before = out.read_bytes()
    history.add_run(session, lines.append)
    (line,) = lines
    assert line.startswith("quantbench history: error: ") and "file is not a database" in line
    assert f"the run file {out} is kept: add it later with `quantbench history add --db {db} {out}`" in line
    assert out.read_bytes() == before and session.exitstatus == pytest.ExitCode.USAGE_ERROR


def test_an_unexpected_store_failure_is_one_line_too(finished, tmp_path, monkeypatch):
    session, lines, out = finished(str(tmp_path / "h.sqlite"))
    import quantbench.history as package

    monkeypatch.setattr(package, "open_store", lambda target: (_ for _ in ()).throw(RuntimeError("boom")))
    history.add_run(session, lines.append)
    assert lines == [f"quantbench history: error: RuntimeError: boom (the run file {out} is kept: add it later with "
                     f"`quantbench history add --db {tmp_path / 'h.sqlite'} {out}`)"]
    assert out.exists()


def test_no_benchmark_finished(finished, tmp_path):
    session, lines, _ = finished(str(tmp_path / "h.sqlite"))
    state(session.config).output_path = None
    history.add_run(session, lines.append)
    assert lines == ["quantbench history: run not stored: no benchmark finished, so pytest-benchmark wrote no run file"]


def test_gate_baseline_name_reads_the_store_with_history(finished, tmp_path):
    db = str(tmp_path / "h.sqlite")
    session, _, out = finished(db)
    with open_store(db) as store:
        store.add(out, name="main")
    run = history.named_baseline(session.config, "name:main")
    assert isinstance(run, Run) and len(run.records) == len(json.loads(out.read_text())["benchmarks"])
    assert history.named_baseline(session.config, "base.json") == "base.json"
    from quantbench.errors import QuantbenchError

    with pytest.raises(QuantbenchError, match="no run named 'nope'"):
        history.named_baseline(session.config, "name:nope")


def test_a_password_in_the_url_never_reaches_the_log(finished):
    session, lines, out = finished("postgresql+psycopg://bench:s3cret@127.0.0.1:1/history")
    history.add_run(session, lines.append)  # nothing listens on port 1
    (line,) = lines
    assert "s3cret" not in line and "bench:***@127.0.0.1:1/history" in line
    assert "cannot open the history database" in line and session.exitstatus == pytest.ExitCode.USAGE_ERROR
