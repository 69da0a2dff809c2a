"""The run history: every run kept in one database, keyed by cell, metric, commit and machine.

One concern per module:

* :mod:`~quantbench.history.fingerprint`: a machine identity that survives reboots (no SQLAlchemy);
* :mod:`~quantbench.history.ingest`: what the store keeps of one run file (no SQLAlchemy);
* :mod:`~quantbench.history.database`: a path or URL -> an SQLAlchemy engine, with one-line errors;
* :mod:`~quantbench.history.schema`: the tables, one definition for SQLite and PostgreSQL;
* :mod:`~quantbench.history.migrations`: the schema's versions, applied in order on open;
* :mod:`~quantbench.history.store`: ``open_store(url_or_path)`` and the store's API;
* :mod:`~quantbench.history.commands`: ``quantbench history add|list|machines|fingerprint|report|export``;
* :mod:`~quantbench.history.changepoints` and :mod:`~quantbench.history.trend`: steps and slow creep in one
  metric's values (what :meth:`Store.values <quantbench.history.store.Store.values>` returns, in commit order);
* :mod:`~quantbench.history.series`: the store as series per cell x metric x machine, one point per commit,
  with their change points and current trend; :mod:`~quantbench.history.report` draws them as the trend page;
* :mod:`~quantbench.history.export`: a stored run as Bencher Metric Format or github-action-benchmark's JSON.

The store needs the ``history`` extra (SQLAlchemy, psycopg); the rest of quantbench imports without it,
and opening a store without it is a one-line error with the install command. See docs/history.md.
"""

from __future__ import annotations

from pathlib import Path

from quantbench.history.database import DEFAULT_DB, ENV_VAR, default_db

__all__ = ["DEFAULT_DB", "ENV_VAR", "default_db", "open_store"]


def open_store(target: str | Path | None = None, **options: object):  # -> quantbench.history.store.Store
    """:func:`quantbench.history.store.open_store`, behind the check that the ``history`` extra is installed
    (without SQLAlchemy: a one-line :class:`~quantbench.errors.MissingDependencyError` with the pip command)."""
    from quantbench.history.database import require_sqlalchemy

    require_sqlalchemy()
    from quantbench.history.store import open_store as _open

    return _open(target, **options)
