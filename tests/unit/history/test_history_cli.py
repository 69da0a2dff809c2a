"""``quantbench history add|list`` through the installed ``quantbench`` command, and named baselines on stored
runs (``quantbench baseline save|list --history``, ``quantbench gate --baseline-name --history``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantbench import cli
from tests.unit.history.factory import machine_info, run_on

pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402
from quantbench.history.fingerprint import from_machine_info  # noqa: E402
from quantbench.history.ingest import read_run  # noqa: E402


def _entry_point() -> list[str]:
    """The console script pip installed beside this interpreter (the command a user types)."""
    script = Path(sys.executable).with_name("quantbench")
    found = str(script) if script.exists() else shutil.which("quantbench")
    if not found:
        pytest.skip("the quantbench console script is not installed (pip install -e .)")
    return [found]


def _quantbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_entry_point(), *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "QUANTBENCH_HISTORY": ""})


def _write(path: Path, run: dict) -> str:
    path.write_text(json.dumps(run), encoding="utf-8")
    return str(path)


def test_add_then_list_through_the_installed_command(tmp_path):
    """Old runs imported (one without core counts), a run re-added, a bad file reported, and the listing."""
    old_info = machine_info(isa_block=False)
    del old_info["quantbench"]["cpu_cores_physical"]
    old = _write(tmp_path / "old.json", run_on(old_info, seed=1, commit="1" * 40,
                                               commit_time="2026-11-30T13:06:36+00:00"))
    new = _write(tmp_path / "new.json", run_on(seed=2, commit="2" * 40, commit_time="2026-12-02T12:30:55+00:00"))
    bad = tmp_path / "limits.json"
    bad.write_text('{"limits": {}}')
    done = _quantbench("history", "add", old, str(bad), new, new, cwd=tmp_path)
    assert done.returncode == 2, done.stderr  # one file was bad; the others were still imported
    lines = done.stdout.splitlines()
    new_id, old_id = from_machine_info(machine_info()).id, from_machine_info(old_info).id
    values = len(read_run(new).values)
    assert lines[0] == f"{old}: added as run 1 · machine {old_id} (not recorded: physical_cores) · 4 cells, " \
                       f"{len(read_run(old).values)} values"
    assert lines[1] == f"{new}: added as run 2 · machine {new_id} · 4 cells, {values} values"
    assert lines[2] == f"{new}: already stored as run 2 · machine {new_id} · 4 cells, {values} values"
    assert done.stderr.strip() == (f"quantbench history add: error: {bad}: not a pytest-benchmark JSON file "
                                   "(no 'benchmarks' list)")
    assert (tmp_path / "reports" / "history.sqlite").is_file()  # the default database

    listing = _quantbench("history", "list", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["run", "commit", "commit", "time", "run", "time", "branch", "machine", "suite", "cells",
                              "names"]
    assert [row.split()[:2] for row in rows] == [["1", "1" * 12], ["2", "2" * 12]]
    assert rows[0].split()[2:] == ["2026-11-30", "13:06", "2026-11-22", "02:00", "main", old_id, "default", "4"]


def test_list_filters_and_an_empty_history(tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    assert cli.main(["history", "list", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == f"no runs in {db}"
    with open_store(db) as store:
        store.add(run_on(seed=1, branch="main"))
        store.add(run_on(seed=2, branch="dev"))
    assert cli.main(["history", "list", "--db", db, "--branch", "dev"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(rows) == 1 and " dev " in rows[0]
    assert cli.main(["history", "machines", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "AMD EPYC · Zen 3, AVX2" in out and from_machine_info(machine_info()).id in out


def test_fingerprint_of_this_machine_and_of_run_files(tmp_path, capsys):
    path = _write(tmp_path / "run.json", run_on())
    assert cli.main(["history", "fingerprint", path, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == from_machine_info(machine_info()).id and shown["source"] == path
    assert cli.main(["history", "fingerprint"]) == 0
    assert capsys.readouterr().out.startswith("this machine: ")


def test_bad_database_is_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["history", "list", "--db", "oracle://scott@db/x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("quantbench history: error: unknown database URL scheme 'oracle'") and "\n" not in err


def test_without_sqlalchemy_the_core_imports_and_history_gives_the_install_hint(tmp_path):
    """SQLAlchemy hidden from the interpreter: quantbench and its commands import; the history command
    fails in one line with the pip command."""
    code = ("import sys; sys.modules['sqlalchemy'] = None\n"
            "import quantbench.history, quantbench.history.fingerprint, quantbench.gate, quantbench.plugin\n"
            "from quantbench.cli import main\n"
            f"sys.exit(main(['history', 'list', '--db', {str(tmp_path / 'h.sqlite')!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("quantbench history: error: the history store needs SQLAlchemy 2: "
                                   "pip install 'quantbench[history]'")


def test_baseline_save_and_list_with_history_name_stored_runs(tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    first, second = _write(tmp_path / "a.json", run_on(seed=1)), _write(tmp_path / "b.json", run_on(seed=2))
    assert cli.main(["baseline", "save", first, "--name", "main", "--history", db]) == 0
    assert capsys.readouterr().out.strip() == f"saved baseline 'main' -> {first} added as run 1 in {db}"
    assert cli.main(["baseline", "save", second, "--name", "main", "--history", db]) == 0
    assert cli.main(["baseline", "save", second, "--name", "dev", "--history", db]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == \
        f"saved baseline 'dev' -> {second} already stored as run 2 in {db}"
    assert cli.main(["baseline", "list", "--history", db]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.strip().splitlines()[1:]]
    assert rows == [["dev", "run", "2"], ["main", "run", "2"]]
    assert not (tmp_path / ".quantbench").exists()  # nothing went to the baselines folder
    assert cli.main(["baseline", "save", first, "--name", "bad name", "--history", db]) == 2
    assert "run name 'bad name' is not valid" in capsys.readouterr().err
    with open_store(db) as store:
        assert len(store.runs()) == 2  # the bad name was refused before the run was added again


def test_gate_reads_a_named_baseline_from_the_history(tmp_path, capsys):
    db = str(tmp_path / "h.sqlite")
    base = _write(tmp_path / "base.json", run_on(seed=1))
    slower = _write(tmp_path / "slower.json", run_on(seed=2, latency_scale={"dynamic_int8": 1.6}))
    assert cli.main(["baseline", "save", base, "--name", "main", "--history", db]) == 0
    capsys.readouterr()
    assert cli.main(["gate", "--baseline-name", "main", "--history", db, base]) == 0
    assert cli.main(["gate", "--baseline-name", "main", "--history", db, slower]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert cli.main(["gate", "--baseline-name", "nope", "--history", db, base]) == 2
    assert "no run named 'nope' (names: main)" in capsys.readouterr().err
    # Without a name, --history is the gate against the history (test_history_gate.py): one stored run, and it
    # is this one, so every cell has insufficient history.
    assert cli.main(["gate", "--history", db, base]) == 0
    assert "insufficient data (0 runs of this cell on this machine" in capsys.readouterr().out


def test_baseline_folders_work_as_before(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("QUANTBENCH_BASELINE_DIR", raising=False)
    run = _write(tmp_path / "a.json", run_on())
    folder = tmp_path / "baselines"
    assert cli.main(["baseline", "save", run, "--name", "main", "--dir", str(folder)]) == 0
    assert (folder / "main.json").read_bytes() == Path(run).read_bytes()
    with pytest.raises(SystemExit):
        cli.main(["baseline", "save", run, "--name", "x", "--dir", str(folder), "--history", "h.sqlite"])
    assert "not allowed with argument" in capsys.readouterr().err
