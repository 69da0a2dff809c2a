"""The history store: ``open_store(url_or_path)``, then add runs, list them, read a cell's values, name runs.

::

    from quantbench.history import open_store

    with open_store("reports/history.sqlite") as store:        # or "postgresql+psycopg://..."
        added = store.add("results.json")                        # .run_id, .added (False: already stored)
        store.name_run("main", added.run_id)
        for v in store.values("test_latency[minilm-tweets-fp32-pytorch-cpu-bs8-seq64]", "latency_p50_ms",
                              machine=added.fingerprint.id):
            print(v.commit_id, v.value, v.ci95, v.direction)

Ordering: runs and values come in the order of their run's commit time (a run without one: its run
time), then run time, then the time they were stored, then id: the order of the code measured, with
re-measurements of one commit kept in the order they were made.

Every database error leaves as one :class:`~quantbench.errors.QuantbenchError` line naming the
database; bad input (an unreadable or foreign file) is refused before the database is touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import sqlalchemy as sa

from quantbench.errors import QuantbenchError
from quantbench.history import schema
from quantbench.history.database import create_engine, default_db, describe, error_line
from quantbench.history.fingerprint import Fingerprint
from quantbench.history.ingest import RUN_FORMAT, cell_key, decode_run, encode_run, read_run
from quantbench.history.migrations import upgrade
from quantbench.results import Run, parse_run

# As baseline names: a branch or a commit ("main", "feature/x", "v1.2@abc"), one per line of a listing.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@+-]{0,254}$")


@dataclass(frozen=True)
class StoredRun:
    """A run as listed (its JSON stays in the database: :meth:`Store.run_data`)."""

    id: int
    content_hash: str
    stored_at: dt.datetime
    run_time: dt.datetime | None
    commit_id: str | None
    commit_time: dt.datetime | None
    branch: str | None
    dirty: bool | None
    suite: str | None
    suite_digest: str | None
    quantbench_version: str | None
    machine_id: str
    cells: int
    failed_cells: int
    source: str | None
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Added:
    """What :meth:`Store.add` did: ``added`` is False when the run was already stored (as ``run_id``)."""

    run_id: int
    added: bool
    fingerprint: Fingerprint
    cells: int
    values: int
    source: str | None


@dataclass(frozen=True)
class StoredValue:
    """One figure of one cell in one stored run, with the run's commit, times and machine."""

    run_id: int
    commit_id: str | None
    commit_time: dt.datetime | None
    branch: str | None
    run_time: dt.datetime | None
    stored_at: dt.datetime
    machine_id: str
    test: str
    cell: str
    metric: str
    value: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    direction: str
    unit: str
    samples: int

    @property
    def ci95(self) -> tuple[float, float] | None:
        return (self.ci_low, self.ci_high) if self.ci_low is not None and self.ci_high is not None else None


_RUN_COLUMNS = [c for c in schema.runs.c if c.name not in ("run_data", "run_format", "versions")]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _order(table_runs: sa.Table = schema.runs) -> list[Any]:
    when = sa.func.coalesce(table_runs.c.commit_time, table_runs.c.run_time)
    # NULLs (no commit and no run time) last on every backend (SQLite and PostgreSQL differ by default).
    return [sa.case((when.is_(None), 1), else_=0), when, sa.case((table_runs.c.run_time.is_(None), 1), else_=0),
            table_runs.c.run_time, table_runs.c.stored_at, table_runs.c.id]


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name.split("/"):
        raise QuantbenchError(f"run name {name!r} is not valid: use letters, digits and . _ / @ + - "
                              "(a branch name or a commit), starting with a letter or digit")
    return name


class Store:
    """An open history database (see the module docstring). Use as a context manager, or :meth:`close`."""

    def __init__(self, engine: sa.Engine, where: str):
        self.engine = engine
        self.where = where

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            raise QuantbenchError(f"{self.where}: {doing} failed: {error_line(exc)}") from None

    # -- adding ---------------------------------------------------------------------------------------
    def add(self, source: str | Path | Mapping[str, Any], *, name: str | None = None) -> Added:
        """Store a run (a file path or its parsed JSON) with its machine and values; a run already stored
        (same content) is left as it is. With ``name``, point that name at the run too (a named baseline).
        Bad input (the file, the name) is refused before the database is touched."""
        if name is not None:
            check_name(name)
        record = read_run(source)
        with self._errors(f"adding {record.source or 'a run'}"):
            for attempt in (1, 2):
                try:
                    added = self._add(record)
                    break
                except sa.exc.IntegrityError:
                    if attempt == 2:  # not a race with another writer: a real constraint failure
                        raise
        if name is not None:
            self.name_run(name, added.run_id)
        return added

    def add_run(self, source: str | Path | Mapping[str, Any]) -> int:
        """The stored run's id (added now or before: adding is idempotent)."""
        return self.add(source).run_id

    def _add(self, record: Any) -> Added:
        def done(run_id: int, added: bool) -> Added:
            return Added(run_id, added, record.fingerprint, record.cells, len(record.values), record.source)

        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(schema.runs.c.id)
                                    .where(schema.runs.c.content_hash == record.content_hash)).scalar()
            if existing is not None:
                return done(int(existing), False)
            fingerprint = record.fingerprint
            if conn.execute(sa.select(schema.machines.c.id).where(schema.machines.c.id == fingerprint.id)).first() \
                    is None:
                conn.execute(sa.insert(schema.machines).values(id=fingerprint.id, label=fingerprint.label[:500],
                                                               description=fingerprint.to_json(), first_seen=_now()))
            result = conn.execute(sa.insert(schema.runs).values(
                content_hash=record.content_hash, stored_at=_now(), run_time=record.run_time,
                commit_id=record.commit_id, commit_time=record.commit_time, branch=record.branch, dirty=record.dirty,
                suite=record.suite, suite_digest=record.suite_digest, quantbench_version=record.quantbench_version,
                versions=record.versions, machine_id=fingerprint.id, cells=record.cells,
                failed_cells=record.failed_cells, source=(record.source or None) and record.source[:1000],
                run_format=RUN_FORMAT, run_data=encode_run(record.data)))
            run_id = int(result.inserted_primary_key[0])
            if record.values:
                conn.execute(sa.insert(schema.cell_values), [{"run_id": run_id, **asdict(v)} for v in record.values])
            return done(run_id, True)

    # -- reading --------------------------------------------------------------------------------------
    def runs(self, *, machine: str | Fingerprint | None = None, branch: str | None = None,
             suite: str | None = None, commit: str | None = None, limit: int | None = None) -> list[StoredRun]:
        """Stored runs in commit order (see the module docstring), filtered by the arguments given;
        ``commit`` matches a prefix of the commit id; ``limit`` keeps the last N."""
        query = sa.select(*_RUN_COLUMNS)
        if machine is not None:
            query = query.where(schema.runs.c.machine_id == _machine_id(machine))
        if branch is not None:
            query = query.where(schema.runs.c.branch == branch)
        if suite is not None:
            query = query.where(schema.runs.c.suite == suite)
        if commit is not None:
            query = query.where(schema.runs.c.commit_id.startswith(commit, autoescape=True))
        with self._errors("listing runs"), self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*_order())).mappings().all()
            names = self._names_by_run(conn)
        found = [StoredRun(**{**row, "names": tuple(names.get(row["id"], ()))}) for row in rows]
        return found[-limit:] if limit else found

    def run(self, run_id: int) -> StoredRun:
        with self._errors(f"reading run {run_id}"), self.engine.connect() as conn:
            row = conn.execute(sa.select(*_RUN_COLUMNS).where(schema.runs.c.id == run_id)).mappings().first()
            if row is None:
                raise QuantbenchError(f"{self.where}: no run with id {run_id}")
            names = self._names_by_run(conn).get(row["id"], ())
        return StoredRun(**{**row, "names": tuple(names)})

    def run_data(self, run_id: int) -> dict[str, Any]:
        """The run's pytest-benchmark JSON, as it was added."""
        with self._errors(f"reading run {run_id}"), self.engine.connect() as conn:
            row = conn.execute(sa.select(schema.runs.c.run_format, schema.runs.c.run_data)
                               .where(schema.runs.c.id == run_id)).first()
        if row is None:
            raise QuantbenchError(f"{self.where}: no run with id {run_id}")
        return decode_run(row.run_data, row.run_format)

    def load_run(self, run_id: int) -> Run:
        """The run parsed as :func:`quantbench.results.load_run` parses a file (for the gate and reports)."""
        return parse_run(self.run_data(run_id))

    def values(self, cell: str | Sequence[Any], metric: str, machine: str | Fingerprint | None = None
               ) -> list[StoredValue]:
        """Every stored value of ``metric`` for ``cell``, in commit order. ``cell`` is the readable
        ``test[cell id]`` or the gate's key (:attr:`quantbench.results.BenchmarkRecord.key`)."""
        v, r = schema.cell_values, schema.runs
        query = (sa.select(v.c.run_id, r.c.commit_id, r.c.commit_time, r.c.branch, r.c.run_time, r.c.stored_at,
                           r.c.machine_id, v.c.test, v.c.cell, v.c.metric, v.c.value, v.c.se, v.c.ci_low, v.c.ci_high,
                           v.c.direction, v.c.unit, v.c.samples)
                 .join(r, r.c.id == v.c.run_id).where(v.c.metric == metric))
        if isinstance(cell, str):
            query = query.where(v.c.cell == cell)
        else:
            query = query.where(v.c.cell_key == cell_key(tuple(cell)))
        if machine is not None:
            query = query.where(r.c.machine_id == _machine_id(machine))
        with self._errors(f"reading {metric} of {cell}"), self.engine.connect() as conn:
            rows = conn.execute(query.order_by(*_order())).mappings().all()
        return [StoredValue(**row) for row in rows]

    def cells(self, *, machine: str | Fingerprint | None = None) -> list[tuple[str, str]]:
        """The (cell, metric) pairs stored, sorted (what a trend page walks)."""
        v, r = schema.cell_values, schema.runs
        query = sa.select(v.c.cell, v.c.metric).distinct()
        if machine is not None:
            query = query.join(r, r.c.id == v.c.run_id).where(r.c.machine_id == _machine_id(machine))
        with self._errors("listing cells"), self.engine.connect() as conn:
            return sorted((row.cell, row.metric) for row in conn.execute(query))

    def machines(self) -> list[dict[str, Any]]:
        """Each machine fingerprint stored: id, label, description and how many runs it has."""
        m, r = schema.machines, schema.runs
        counts = sa.select(r.c.machine_id, sa.func.count(r.c.id).label("runs")).group_by(r.c.machine_id).subquery()
        query = (sa.select(m.c.id, m.c.label, m.c.description, m.c.first_seen,
                           sa.func.coalesce(counts.c.runs, 0).label("runs"))
                 .join(counts, counts.c.machine_id == m.c.id, isouter=True).order_by(m.c.first_seen, m.c.id))
        with self._errors("listing machines"), self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # -- names ----------------------------------------------------------------------------------------
    def name_run(self, name: str, run_id: int) -> None:
        """Point ``name`` at a stored run (a named baseline); an older run of that name loses it."""
        check_name(name)
        with self._errors(f"naming run {run_id} {name!r}"), self.engine.begin() as conn:
            if conn.execute(sa.select(schema.runs.c.id).where(schema.runs.c.id == run_id)).first() is None:
                raise QuantbenchError(f"{self.where}: no run with id {run_id} to name {name!r}")
            conn.execute(sa.delete(schema.names).where(schema.names.c.name == name))
            conn.execute(sa.insert(schema.names).values(name=name, run_id=run_id, named_at=_now()))

    def named(self, name: str) -> StoredRun:
        """The run ``name`` points at; the error lists the names that exist."""
        with self._errors(f"reading name {name!r}"), self.engine.connect() as conn:
            run_id = conn.execute(sa.select(schema.names.c.run_id).where(schema.names.c.name == name)).scalar()
        if run_id is None:
            known = ", ".join(self.names()) or "none"
            raise QuantbenchError(f"{self.where}: no run named {name!r} (names: {known})")
        return self.run(int(run_id))

    def names(self) -> dict[str, int]:
        """Every name and the run id it points at, sorted by name."""
        with self._errors("listing names"), self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.names.c.name, schema.names.c.run_id).order_by(schema.names.c.name))
            return {row.name: int(row.run_id) for row in rows}

    @staticmethod
    def _names_by_run(conn: sa.Connection) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for row in conn.execute(sa.select(schema.names.c.name, schema.names.c.run_id).order_by(schema.names.c.name)):
            out.setdefault(int(row.run_id), []).append(row.name)
        return out


def _machine_id(machine: str | Fingerprint) -> str:
    return machine.id if isinstance(machine, Fingerprint) else str(machine)


def open_store(target: str | Path | None = None, *, schema_version: int | None = None) -> Store:
    """Open (and create, or upgrade) the history at ``target``: a path (SQLite) or a database URL.
    Default: ``$QUANTBENCH_HISTORY``, else ``reports/history.sqlite``. ``schema_version`` stops the
    upgrade early (for tests of the migrations)."""
    engine = create_engine(default_db() if target is None else target)
    where = describe(engine.url)
    try:
        upgrade(engine, where, **({"target": schema_version} if schema_version is not None else {}))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise QuantbenchError(f"{where}: cannot open the history database: {error_line(exc)}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, where)
