"""Where the history lives: a path or a URL -> an SQLAlchemy engine, and one-line errors for each way it fails.

* a plain path (``reports/history.sqlite``) is an SQLite file, made with its folder on first use;
* ``sqlite:///relative.sqlite``, ``sqlite:////absolute.sqlite`` as SQLAlchemy spells them;
* ``postgresql+psycopg://user:password@host:port/db`` (``postgresql://`` means the same: psycopg 3 is
  the driver the ``history`` extra installs; ``+psycopg2`` and ``+pg8000`` work where installed).

SQLite runs with real transactions (``BEGIN`` issued by us, not by the sqlite3 module's heuristics), so
a migration or an import either lands whole or not at all, and with foreign keys enforced.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from quantbench.errors import MissingDependencyError, QuantbenchError

#: Where ``quantbench history`` and ``--history`` keep runs when no database is named.
DEFAULT_DB = Path("reports") / "history.sqlite"
#: The environment variable that names the database (``--db`` and ``--history`` take precedence).
ENV_VAR = "QUANTBENCH_HISTORY"
INSTALL_HINT = "pip install 'quantbench[history]'"
#: Drivers quantbench knows for each backend: module to import, and how to install it.
DRIVERS = {
    ("sqlite", "pysqlite"): ("sqlite3", "a Python built with sqlite3"),
    ("postgresql", "psycopg"): ("psycopg", INSTALL_HINT + " (psycopg 3)"),
    ("postgresql", "psycopg2"): ("psycopg2", "pip install psycopg2-binary"),
    ("postgresql", "pg8000"): ("pg8000", "pip install pg8000"),
}
URL_FORMS = "a file path, sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"


def default_db() -> str:
    """``$QUANTBENCH_HISTORY``, else ``reports/history.sqlite``."""
    return os.environ.get(ENV_VAR) or str(DEFAULT_DB)


def require_sqlalchemy() -> None:
    """A one-line error with the install command where SQLAlchemy 2 is missing."""
    if importlib.util.find_spec("sqlalchemy") is None:
        raise MissingDependencyError(f"the history store needs SQLAlchemy 2: {INSTALL_HINT}")
    import sqlalchemy

    if int(sqlalchemy.__version__.split(".")[0]) < 2:
        raise MissingDependencyError(f"the history store needs SQLAlchemy 2, found {sqlalchemy.__version__}: "
                                     f"{INSTALL_HINT}")


def is_url(target: str) -> bool:
    return "://" in target


def resolve_url(target: str | Path) -> Any:
    """``target`` as an ``sqlalchemy.engine.URL``; errors name the value (passwords masked)."""
    require_sqlalchemy()
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import ArgumentError

    text = str(target).strip()
    if not text:
        raise QuantbenchError(f"no history database given: use {URL_FORMS}")
    if not is_url(text):
        return URL.create("sqlite", database=str(Path(text).expanduser()))
    scheme = text.split("://", 1)[0]
    try:
        url = make_url(text)
    except ArgumentError:
        raise QuantbenchError(f"{scheme}://...: not a database URL (use {URL_FORMS})") from None
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("sqlite", "postgresql"):
        raise QuantbenchError(f"unknown database URL scheme {scheme!r} in {masked(url)} (use {URL_FORMS})")
    if not driver:  # postgresql:// means psycopg 3, the driver the history extra installs
        driver = "pysqlite" if backend == "sqlite" else "psycopg"
        url = url.set(drivername=f"{backend}+{driver}")
    if (backend, driver) not in DRIVERS:
        known = ", ".join(f"{b}+{d}" for b, d in DRIVERS)
        raise QuantbenchError(f"database driver {backend}+{driver} in {masked(url)} is not supported (use one of: "
                              f"{known})")
    module, install = DRIVERS[(backend, driver)]
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"{masked(url)}: the {driver} driver is not installed: {install}")
    return url


def mask_text(target: str) -> str:
    """A database URL as given, its password hidden (for messages about a target not yet parsed)."""
    import re

    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", str(target))


def masked(url: Any) -> str:
    """The URL with its password hidden (what errors and listings show)."""
    return url.render_as_string(hide_password=True)


def describe(url: Any) -> str:
    """A short name for messages: the SQLite file's path, else the masked URL."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return masked(url)


def _sqlite_transactions(engine: Any) -> None:
    """SQLAlchemy's documented recipe: let SQLAlchemy, not the sqlite3 module, begin transactions, so DDL
    is transactional; and enforce foreign keys on every connection."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):  # noqa: ANN001 - DB-API objects
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # noqa: ANN001
        connection.exec_driver_sql("BEGIN")


def create_engine(target: str | Path) -> Any:
    """An engine for ``target``; an SQLite file's folder is made. Nothing is connected yet."""
    import sqlalchemy as sa

    url = resolve_url(target)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if path.is_dir():
                raise QuantbenchError(f"{path}: is a folder, not an SQLite file (name a file, e.g. "
                                      f"{path / 'history.sqlite'})")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise QuantbenchError(f"{path.parent}: cannot make the history folder ({exc.strerror or exc})") \
                    from None
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        _sqlite_transactions(engine)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def error_line(exc: BaseException) -> str:
    """The first line of a driver's error, without SQLAlchemy's statement dump and background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
