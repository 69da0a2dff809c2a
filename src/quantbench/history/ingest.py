"""What the store keeps of one run file: its identity, its key fields and one value per cell x metric.

Reads runs only through :mod:`quantbench.results` (the contract reports and the gate read), so the
history sees the same cells, metrics, intervals and standard errors the gate judges. Pure Python: no
database here, so the mapping is tested without one.

A run's identity is the SHA-256 of its canonical JSON (keys sorted, no whitespace): the same run
re-added, reformatted or re-read from a copy, is recognised; any changed byte of content is a new run.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from quantbench.errors import QuantbenchError
from quantbench.history.fingerprint import Fingerprint, from_machine_info
from quantbench.results import BenchmarkRecord, Run, load_run, metric_spec, parse_run

#: How ``runs.run_data`` is encoded: the run's JSON (UTF-8), zlib-compressed.
RUN_FORMAT = "json+zlib"


@dataclass(frozen=True)
class CellValue:
    """One figure of one cell in one run (a row of ``cell_values``)."""

    test: str
    cell: str  # "test_latency[minilm-tweets-fp32-pytorch-cpu-bs8-seq64]"
    cell_key: str  # JSON of BenchmarkRecord.key: how the gate aligns cells across runs
    metric: str
    value: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    direction: str  # "lower" or "higher" is better
    unit: str
    samples: int  # raw rounds behind the record (stats.data)


@dataclass(frozen=True)
class RunRecord:
    """A run as the store keeps it."""

    content_hash: str
    data: dict[str, Any] = field(repr=False)
    source: str | None
    run_time: dt.datetime | None
    commit_id: str | None
    commit_time: dt.datetime | None
    branch: str | None
    dirty: bool | None
    suite: str | None
    suite_digest: str | None
    quantbench_version: str | None
    versions: dict[str, Any]
    fingerprint: Fingerprint
    cells: int
    failed_cells: int
    values: tuple[CellValue, ...] = field(repr=False)


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(data: Mapping[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical(data).encode("utf-8")).hexdigest()


def encode_run(data: Mapping[str, Any]) -> bytes:
    return zlib.compress(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), 6)


def decode_run(blob: bytes, run_format: str) -> dict[str, Any]:
    if run_format != RUN_FORMAT:
        raise QuantbenchError(f"stored run encoded as {run_format!r}, which this quantbench cannot read")
    return json.loads(zlib.decompress(blob).decode("utf-8"))


def cell_key(key: tuple | list) -> str:
    """The JSON text of a cell key (:attr:`BenchmarkRecord.key`), as ``cell_values.cell_key`` holds it."""
    return json.dumps(list(key), separators=(",", ":"))


def cell_name(record: BenchmarkRecord) -> str:
    return f"{record.test}[{record.cell_id}]"


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time -> naive UTC (a time without an offset is read as UTC); None where absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _text(value: Any, limit: int) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


def values_of(records: list[BenchmarkRecord]) -> tuple[CellValue, ...]:
    """One :class:`CellValue` per record x known metric; a cell listed twice keeps its last record, as the
    gate does."""
    out: dict[tuple[str, str], CellValue] = {}
    for record in records:
        key, name = cell_key(record.key), cell_name(record)
        intervals, errors = record.intervals, record.std_errors
        for metric, value in record.metrics.items():
            spec = metric_spec(metric)
            if spec is None:  # metric_values keeps only known figures; guard anyway
                continue
            low, high = intervals.get(metric, (None, None))
            out[(key, metric)] = CellValue(test=record.test, cell=name, cell_key=key, metric=metric, value=value,
                                           se=errors.get(metric), ci_low=low, ci_high=high, direction=spec.better,
                                           unit=spec.unit, samples=len(record.samples_s))
    return tuple(out.values())


def record_of(run: Run, *, source: str | None = None) -> RunRecord:
    """What the store keeps of a parsed run."""
    where = source or "run"
    if not isinstance(run.raw.get("machine_info"), Mapping):
        raise QuantbenchError(f"{where}: not a pytest-benchmark run (no 'machine_info' object)")
    own = run.machine_info.get("quantbench") if isinstance(run.machine_info.get("quantbench"), Mapping) else {}
    versions = dict(own.get("versions") or {}) if isinstance(own.get("versions"), Mapping) else {}
    commit = run.commit_info if isinstance(run.commit_info, Mapping) else {}
    dirty = commit.get("dirty")
    return RunRecord(
        content_hash=content_hash(run.raw),
        data=run.raw,
        source=source,
        run_time=parse_time(run.datetime),
        commit_id=_text(commit.get("id"), 64),
        commit_time=parse_time(commit.get("time")) or parse_time(commit.get("author_time")),
        branch=_text(commit.get("branch"), 255),
        dirty=dirty if isinstance(dirty, bool) else None,
        suite=_text(run.suite.get("name"), 255),
        suite_digest=_text(run.suite.get("sha256"), 64),
        quantbench_version=_text(versions.get("quantbench"), 64),
        versions=versions,
        fingerprint=from_machine_info(run.machine_info),
        cells=len(run.records),
        failed_cells=len(run.failed),
        values=values_of(run.records),
    )


def read_run(source: str | Path | Mapping[str, Any]) -> RunRecord:
    """A run file's path, or its JSON already parsed; errors are one line naming the file."""
    if isinstance(source, Mapping):
        return record_of(parse_run(dict(source)))
    path = Path(source)
    return record_of(load_run(path), source=str(path))
