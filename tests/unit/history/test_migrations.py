"""The versioned schema, on SQLite and PostgreSQL: steps applied in order on open, an old history upgraded
with its runs, a newer one refused in one line, a failed step rolled back whole."""

from __future__ import annotations

import pytest

from quantbench.errors import QuantbenchError
from tests.unit.history.factory import run_on

sa = pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")

from quantbench.history import migrations, open_store, schema  # noqa: E402


def _versions(store) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(schema.schema_version.c.version).order_by(schema.schema_version.c.version))
                    .scalars())


def _tables(store) -> set[str]:
    with store.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_a_new_database_gets_every_step_in_order(db_url):
    with open_store(db_url) as store:
        assert _versions(store) == [m.version for m in migrations.MIGRATIONS] \
            == list(range(1, schema.SCHEMA_VERSION + 1))
        assert set(schema.OWN_TABLES) <= _tables(store)


def test_the_steps_build_exactly_the_schema_the_code_reads(db_url):
    """A column added to schema.py without a migration step (or the reverse) fails here."""
    with open_store(db_url) as store, store.engine.connect() as conn:
        inspector = sa.inspect(conn)
        for table in schema.metadata.sorted_tables:
            columns = {c["name"]: c for c in inspector.get_columns(table.name)}
            assert set(columns) == {c.name for c in table.columns}, table.name
            for column in table.columns:
                assert columns[column.name]["nullable"] == column.nullable or column.primary_key, (table.name, column)
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("cell_values")}
        assert ("run_id", "cell_key", "metric") in uniques


def test_an_old_history_is_upgraded_with_its_runs(db_url):
    with open_store(db_url, schema_version=1) as old:
        assert _versions(old) == [1] and "names" not in _tables(old)
        run_id = old.add_run(run_on())  # a version-1 store holds runs already
    with open_store(db_url) as store:
        assert _versions(store) == [1, 2] and "names" in _tables(store)
        assert [r.id for r in store.runs()] == [run_id] and store.add(run_on()).added is False
        store.name_run("main", run_id)
        assert store.named("main").id == run_id


def test_a_newer_history_is_refused_in_one_line(db_url):
    with open_store(db_url) as store, store.engine.begin() as conn:
        conn.execute(sa.insert(schema.schema_version).values(version=schema.SCHEMA_VERSION + 1,
                                                             description="from the future", applied_at=sa.func.now()))
    with pytest.raises(QuantbenchError) as caught:
        open_store(db_url)
    message = str(caught.value)
    assert f"history schema version {schema.SCHEMA_VERSION + 1} is newer than this quantbench reads " \
           f"({schema.SCHEMA_VERSION}): upgrade quantbench" in message
    assert "\n" not in message


def test_a_failed_step_is_rolled_back_whole(db_url, monkeypatch):
    with open_store(db_url, schema_version=1):
        pass

    def half_done(conn):
        schema.names.create(conn)
        raise sa.exc.OperationalError("CREATE INDEX ...", {}, RuntimeError("disk full"))

    broken = (migrations.MIGRATIONS[0], migrations.Migration(2, "names on runs (named baselines)", half_done))
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    with pytest.raises(QuantbenchError, match=r"schema step 2 \(names on runs \(named baselines\)\) failed: disk full"):
        open_store(db_url)
    monkeypatch.undo()
    engine = sa.create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
    try:
        with engine.connect() as conn:
            assert "names" not in sa.inspect(conn).get_table_names()  # the table of the failed step is gone
    finally:
        engine.dispose()
    with open_store(db_url) as store:  # and the real step applies afterwards
        assert _versions(store) == [1, 2]


def test_our_tables_without_a_version_are_not_taken_for_a_history(db_url):
    engine = sa.create_engine(db_url if "://" in db_url else f"sqlite:///{db_url}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    finally:
        engine.dispose()
    with pytest.raises(QuantbenchError, match=r"has table\(s\) runs but no schema_version table: not a quantbench "
                                              r"history database"):
        open_store(db_url)
