"""Fixtures of the history tests: a database URL per backend (an SQLite file; a database on a PostgreSQL
server the session starts, skipped with the reason where none can start) and synthetic runs."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.unit.history import postgres

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server():
    try:
        server = postgres.start()
    except postgres.Unavailable as exc:
        pytest.skip(f"no PostgreSQL server can start here: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same store tests on both backends: a path (SQLite) or a fresh PostgreSQL database's URL."""
    pytest.importorskip("sqlalchemy", reason="the history extra is not installed (pip install 'quantbench[history]')")
    if request.param == "sqlite":
        return str(tmp_path / "history.sqlite")
    server = request.getfixturevalue("postgres_server")
    return postgres.create_database(server, f"quantbench_test_{os.getpid()}_{next(_databases)}")
