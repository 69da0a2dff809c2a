"""The history's tables, defined once through SQLAlchemy Core for SQLite and PostgreSQL alike.

This is the schema at :data:`SCHEMA_VERSION`; :mod:`quantbench.history.migrations` brings a database
there step by step (a test checks that the steps produce exactly these tables).

* ``schema_version``: one row per migration applied (version, what it did, when);
* ``machines``: one row per machine fingerprint (its 16-hex id and its description JSON);
* ``runs``: one row per stored run, unique by the SHA-256 of its canonical JSON (re-adding is a no-op):
  stored and run times, commit, commit time, branch, suite name and digest, quantbench version, the
  dependency versions, the machine, and the whole pytest-benchmark JSON, zlib-compressed;
* ``cell_values``: one row per run x cell x metric, keyed as the gate keys cells (``cell_key`` is the JSON
  of :attr:`quantbench.results.BenchmarkRecord.key`; ``cell`` the readable ``test[cell id]``), with the
  value, its standard error and 95 % interval where the record has them, the metric's direction and
  unit from :data:`quantbench.results.METRICS`, and the count of raw samples behind it;
* ``names``: a name -> a run (named baselines).

Times are stored as naive UTC. Names avoid SQL keywords (``commit_id``, ``cell_values``).
"""

from __future__ import annotations

import sqlalchemy as sa

#: The version this code writes and reads; :mod:`~quantbench.history.migrations` lists how to get there.
SCHEMA_VERSION = 2

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.DateTime, nullable=False),
)

machines = sa.Table(
    "machines", metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("label", sa.String(500), nullable=False),
    sa.Column("description", sa.JSON, nullable=False),
    sa.Column("first_seen", sa.DateTime, nullable=False),
)

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("stored_at", sa.DateTime, nullable=False),
    sa.Column("run_time", sa.DateTime),
    sa.Column("commit_id", sa.String(64)),
    sa.Column("commit_time", sa.DateTime),
    sa.Column("branch", sa.String(255)),
    sa.Column("dirty", sa.Boolean),
    sa.Column("suite", sa.String(255)),
    sa.Column("suite_digest", sa.String(64)),
    sa.Column("quantbench_version", sa.String(64)),
    sa.Column("versions", sa.JSON, nullable=False),
    sa.Column("machine_id", sa.String(16), sa.ForeignKey("machines.id"), nullable=False),
    sa.Column("cells", sa.Integer, nullable=False),
    sa.Column("failed_cells", sa.Integer, nullable=False),
    sa.Column("source", sa.String(1000)),
    sa.Column("run_format", sa.String(16), nullable=False),
    sa.Column("run_data", sa.LargeBinary, nullable=False),
    sa.Index("ix_runs_machine_commit_time", "machine_id", "commit_time"),
)

cell_values = sa.Table(
    "cell_values", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("test", sa.String(255), nullable=False),
    sa.Column("cell", sa.String(1000), nullable=False),
    sa.Column("cell_key", sa.String(2000), nullable=False),
    sa.Column("metric", sa.String(255), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("se", sa.Float),
    sa.Column("ci_low", sa.Float),
    sa.Column("ci_high", sa.Float),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.UniqueConstraint("run_id", "cell_key", "metric", name="uq_cell_values_run_cell_metric"),
    sa.Index("ix_cell_values_cell_metric", "cell", "metric"),
    sa.Index("ix_cell_values_key_metric", "cell_key", "metric"),
)

names = sa.Table(
    "names", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("named_at", sa.DateTime, nullable=False),
)

#: Tables this package owns (a database holding some of them without ``schema_version`` is refused).
OWN_TABLES = ("schema_version", "machines", "runs", "cell_values", "names")
