"""The store on SQLite and on a real PostgreSQL server: add, re-add, values in commit order, names, errors."""

from __future__ import annotations

import json

import pytest

from quantbench.errors import MissingDependencyError, QuantbenchError
from tests.unit.history.factory import machine_info, run_on

sa = pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import open_store  # noqa: E402
from quantbench.history import schema  # noqa: E402

CELL = "test_latency[minilm-tweets-fp32-pytorch-cpu-bs1-seq64]"
KEY = ("test_latency", "minilm", "fp32", "pytorch", "cpu", 1, 64, None, None, None)


def _count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_add_stores_the_run_its_machine_and_its_values(db_url):
    run = run_on()
    with open_store(db_url) as store:
        added = store.add(run)
        assert added.added and added.run_id >= 1 and added.cells == len(run["benchmarks"])
        assert added.values == _count(store, schema.cell_values) > 0
        (stored,) = store.runs()
        assert stored.id == added.run_id and stored.machine_id == added.fingerprint.id
        assert stored.commit_id == "a" * 40 and stored.branch == "main" and stored.suite == "default"
        assert stored.quantbench_version == "0.1.0" and stored.cells == added.cells
        assert store.run_data(added.run_id) == run  # the whole pytest-benchmark JSON comes back
        assert len(store.load_run(added.run_id).records) == len(run["benchmarks"])
        (machine,) = store.machines()
        assert machine["id"] == added.fingerprint.id and machine["runs"] == 1
        assert machine["description"]["fields"]["cpu_model"] == "AMD EPYC"


def test_re_adding_a_run_is_a_no_op(db_url, tmp_path):
    run = run_on()
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run, indent=2))
    with open_store(db_url) as store:
        first = store.add(path)
        counts = [_count(store, t) for t in (schema.runs, schema.cell_values, schema.machines)]
        again, from_dict = store.add(path), store.add(run)
        assert (again.added, from_dict.added) == (False, False)
        assert again.run_id == from_dict.run_id == first.run_id == store.add_run(run)
        assert [_count(store, t) for t in (schema.runs, schema.cell_values, schema.machines)] == counts
    with open_store(db_url) as store:  # and after reopening
        assert store.add(run).added is False and len(store.runs()) == 1


def test_values_carry_se_ci_and_direction(db_url):
    run = run_on()
    accuracy = next(b for b in run["benchmarks"] if b["name"].startswith("test_accuracy[minilm-tweets-fp32"))
    accuracy["extra_info"]["accuracy_ci95"] = [0.85, 0.93]
    with open_store(db_url) as store:
        store.add(run)
        (value,) = store.values(accuracy["name"], "accuracy")
        assert value.value == pytest.approx(0.9) and value.ci95 == (0.85, 0.93)
        assert value.se == pytest.approx(0.08 / (2 * 1.96)) and value.direction == "higher"
        (latency,) = store.values(CELL, "latency_p50_ms")
        assert latency.direction == "lower" and latency.unit == "ms" and latency.se is None and latency.ci95 is None
        assert latency.samples == 20
        assert store.values(KEY, "latency_p50_ms") == [latency]  # by the gate's key too
        assert store.values(CELL, "no_such_metric") == []


def test_values_come_in_commit_order_then_stored_order(db_url):
    """Added out of order: an old commit imported last still comes first; two runs of one commit keep
    the order they were measured (run time), then stored."""
    runs = [
        run_on(seed=1, commit="c" * 40, commit_time="2026-12-03T10:00:00+00:00", run_time="2026-12-03T11:00:00+00:00"),
        run_on(seed=2, commit="a" * 40, commit_time="2026-12-01T10:00:00+00:00", run_time="2026-12-05T11:00:00+00:00"),
        run_on(seed=3, commit="b" * 40, commit_time="2026-12-02T10:00:00+00:00", run_time="2026-12-02T12:00:00+00:00"),
        run_on(seed=4, commit="b" * 40, commit_time="2026-12-02T10:00:00+00:00", run_time="2026-12-02T11:00:00+00:00"),
        run_on(seed=5, commit="b" * 40, commit_time="2026-12-02T10:00:00+00:00", run_time="2026-12-02T11:00:00+00:00"),
    ]
    with open_store(db_url) as store:
        ids = [store.add_run(run) for run in runs]
        values = store.values(CELL, "latency_p50_ms")
        assert [v.run_id for v in values] == [ids[1], ids[3], ids[4], ids[2], ids[0]]
        assert [v.commit_id[0] for v in values] == ["a", "b", "b", "b", "c"]
        assert [r.id for r in store.runs()] == [v.run_id for v in values]
        assert [r.id for r in store.runs(commit="b", limit=2)] == [ids[4], ids[2]]


def test_values_of_one_machine(db_url):
    zen3, zen4 = machine_info(), machine_info(family=25, model=0x11, flags=("avx2", "fma", "f16c", "avx512f"))
    with open_store(db_url) as store:
        one = store.add(run_on(zen3, seed=1))
        other = store.add(run_on(zen4, seed=2))
        assert one.fingerprint.id != other.fingerprint.id
        assert [v.run_id for v in store.values(CELL, "latency_p50_ms", machine=other.fingerprint)] == [other.run_id]
        assert [v.run_id for v in store.values(CELL, "latency_p50_ms", machine=one.fingerprint.id)] == [one.run_id]
        assert len(store.values(CELL, "latency_p50_ms")) == 2
        assert [r.id for r in store.runs(machine=other.fingerprint.id)] == [other.run_id]
        assert (CELL, "latency_p50_ms") in store.cells(machine=one.fingerprint.id)


def test_names_point_at_runs(db_url):
    with open_store(db_url) as store:
        first, second = store.add_run(run_on(seed=1)), store.add_run(run_on(seed=2))
        store.name_run("main", first)
        store.name_run("feature/x", first)
        assert store.named("main").id == first and store.named("main").names == ("feature/x", "main")
        store.name_run("main", second)  # a name moves to the newer run
        assert store.named("main").id == second and store.names() == {"feature/x": first, "main": second}
        with pytest.raises(QuantbenchError, match=r"no run named 'nope' \(names: feature/x, main\)"):
            store.named("nope")
        with pytest.raises(QuantbenchError, match="no run with id 999"):
            store.name_run("release", 999)
        with pytest.raises(QuantbenchError, match="run name 'has space' is not valid"):
            store.name_run("has space", first)
        added = store.add(run_on(seed=3), name="nightly")
        assert store.named("nightly").id == added.run_id


def test_a_bad_file_is_refused_before_the_database_is_touched(db_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with open_store(db_url) as store:
        with pytest.raises(QuantbenchError, match=r"bad\.json: not valid JSON"):
            store.add(bad)
        with pytest.raises(QuantbenchError, match="run name"):
            store.add(run_on(), name="-bad")
        assert store.runs() == []


def test_a_plain_path_is_an_sqlite_file_made_with_its_folder(tmp_path):
    target = tmp_path / "reports" / "deep" / "history.sqlite"
    with open_store(target) as store:
        store.add(run_on())
    assert target.read_bytes().startswith(b"SQLite format 3")
    with open_store(f"sqlite:///{target}") as store:
        assert len(store.runs()) == 1


def test_the_default_database_is_under_reports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANTBENCH_HISTORY", raising=False)
    with open_store() as store:
        assert store.where == "reports/history.sqlite"
    assert (tmp_path / "reports" / "history.sqlite").is_file()
    monkeypatch.setenv("QUANTBENCH_HISTORY", str(tmp_path / "elsewhere.sqlite"))
    with open_store() as store:
        assert store.where.endswith("elsewhere.sqlite")


@pytest.mark.parametrize(("target", "message"), [
    ("mysql://u@h/db", "unknown database URL scheme 'mysql'"),
    ("foo://x", "unknown database URL scheme 'foo'"),
    ("postgresql+asyncpg://u@h/db", "database driver postgresql+asyncpg"),
])
def test_a_bad_url_is_one_line_naming_it(target, message):
    with pytest.raises(QuantbenchError) as caught:
        open_store(target)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_password_never_shows_in_an_error():
    with pytest.raises(QuantbenchError) as caught:
        open_store("postgresql+psycopg://bench:s3cret@127.0.0.1:1/history")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
    assert "cannot open the history database" in str(caught.value)


def test_a_missing_driver_names_the_pip_command(monkeypatch):
    from quantbench.history import database

    real = database.importlib.util.find_spec
    monkeypatch.setattr(database.importlib.util, "find_spec",
                        lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"psycopg driver is not installed: pip install "
                                                     r"'quantbench\[history\]'"):
        open_store("postgresql://bench@db.example/history")


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(run_on()))
    with pytest.raises(QuantbenchError, match=r"results\.json: cannot open the history database: file is not a "
                                              r"database"):
        open_store(path)
    with pytest.raises(QuantbenchError, match="is a folder, not an SQLite file"):
        open_store(tmp_path)
