"""The history schema's versions: a list of steps applied in order when a store is opened.

``schema_version`` holds one row per step applied. Opening a database:

* with none of our tables: every step runs (a new history);
* at an older version: the missing steps run, each in its own transaction (PostgreSQL and, with
  :mod:`quantbench.history.database`'s transaction handling, SQLite roll a failed step back whole);
* at a newer version than :data:`~quantbench.history.schema.SCHEMA_VERSION`: refused in one line, since
  this code would misread it;
* with some of our tables but no ``schema_version``: refused (not a history this code made).

Two processes opening one new database at once (two sweeps of a team's PostgreSQL) race on a step:
the loser's transaction fails, it re-reads the version, and goes on when the winner applied it.

Adding a step: append a :class:`Migration` with the next version, change
:mod:`~quantbench.history.schema` to the result, and bump its ``SCHEMA_VERSION``. A step must not
change once released; when a later step alters a table an earlier step created from ``schema``, give
the earlier step its own frozen copy of the old table definition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import sqlalchemy as sa

from quantbench.errors import QuantbenchError
from quantbench.history import schema
from quantbench.history.database import error_line


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create(*tables: sa.Table) -> Callable[[sa.Connection], None]:
    def apply(conn: sa.Connection) -> None:
        for table in tables:
            table.create(conn)
    return apply


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, machines and cell values",
              _create(schema.schema_version, schema.machines, schema.runs, schema.cell_values)),
    Migration(2, "names on runs (named baselines)", _create(schema.names)),
)
assert [m.version for m in MIGRATIONS] == list(range(1, schema.SCHEMA_VERSION + 1))


def current_version(conn: sa.Connection, where: str) -> int:
    """The database's schema version (0 for an empty one); refuses a database that is not ours."""
    tables = set(sa.inspect(conn).get_table_names())
    if "schema_version" not in tables:
        ours = sorted(tables & set(schema.OWN_TABLES))
        if ours:
            raise QuantbenchError(f"{where}: has table(s) {', '.join(ours)} but no schema_version table: "
                                  "not a quantbench history database")
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar() or 0)


def newer_error(where: str, version: int) -> QuantbenchError:
    return QuantbenchError(f"{where}: history schema version {version} is newer than this quantbench reads "
                           f"({schema.SCHEMA_VERSION}): upgrade quantbench (pip install -U 'quantbench[history]')")


def upgrade(engine: sa.Engine, where: str, *, target: int = schema.SCHEMA_VERSION) -> int:
    """Apply the steps above the database's version up to ``target``; returns the version reached."""
    with engine.begin() as conn:
        version = current_version(conn, where)
    if version > schema.SCHEMA_VERSION:
        raise newer_error(where, version)
    for migration in MIGRATIONS:
        if migration.version <= version or migration.version > target:
            continue
        try:
            with engine.begin() as conn:
                if current_version(conn, where) >= migration.version:  # another process got there first
                    continue
                migration.apply(conn)
                conn.execute(sa.insert(schema.schema_version).values(
                    version=migration.version, description=migration.description,
                    applied_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
        except sa.exc.DBAPIError as exc:
            with engine.begin() as conn:
                if current_version(conn, where) >= migration.version:
                    continue
            raise QuantbenchError(f"{where}: schema step {migration.version} ({migration.description}) failed: "
                                  f"{error_line(exc)}") from None
    with engine.begin() as conn:
        return current_version(conn, where)
