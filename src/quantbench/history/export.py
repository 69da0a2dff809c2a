"""``quantbench history export``: one stored run in the formats continuous-benchmarking services read.

* **Bencher Metric Format** (``--format bmf``, https://bencher.dev/docs/reference/bencher-metric-format):
  one JSON object ``{benchmark: {measure: {"value", "lower_value", "upper_value"}}}``, for
  ``bencher run --adapter json --file FILE``. The benchmark is the cell (``test_latency[minilm-...]``),
  the measure the metric as a slug (``latency_p50_ms`` -> ``latency-p50-ms``: lowercase letters,
  digits and hyphens, at most 64 characters), the bounds its stored 95 % interval (else ±1.96 of its
  stored standard error; else none). BMF carries no direction: Bencher sets it per threshold
  (``--threshold-upper-boundary`` where lower is better, ``--threshold-lower-boundary`` where higher is).
* **github-action-benchmark** (``--format github-action-benchmark``, its ``customSmallerIsBetter`` and
  ``customBiggerIsBetter`` tools): a JSON array of ``{name, unit, value, range, extra}`` per direction,
  because the action takes one direction per file. ``-o FILE.json`` writes ``FILE-smaller.json`` and
  ``FILE-bigger.json``, split by :data:`quantbench.results.METRICS`' ``better`` (a direction without
  values gets no file: the action refuses an empty one); names are the run
  report's (``test[cell id] metric``), so a workflow can move from the report's files to these
  without losing the action's history. ``range`` is ``"± se"`` or ``"95% CI [lo, hi]"``.

The run is ``--run ID`` or, by default, the last one in commit order (``--latest``, of one
``--machine`` or ``--branch`` if given). Its values are re-read from its stored JSON through
:mod:`quantbench.history.ingest`, so they are exactly what ``history add`` stored.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from quantbench.errors import QuantbenchError
from quantbench.history.ingest import CellValue, values_of
from quantbench.history.series import Z95, short
from quantbench.reports.uncertainty import fmt_uncertainty
from quantbench.results import metric_spec

BMF, GITHUB_ACTION_BENCHMARK = "bmf", "github-action-benchmark"
FORMATS = (BMF, GITHUB_ACTION_BENCHMARK)
#: Bencher's limits (its BMF reference): a measure's slug or name 64 characters, a benchmark's name 1024.
MEASURE_MAX, BENCHMARK_MAX = 64, 1024
#: github-action-benchmark's tool per file.
TOOLS = {"smaller": "customSmallerIsBetter", "bigger": "customBiggerIsBetter"}


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote."""

    paths: tuple[Path, ...]
    run_id: int
    commit: str | None
    machine: str
    benchmarks: int
    entries: int


def measure_slug(metric: str) -> str:
    """``latency_p50_ms`` -> ``latency-p50-ms``; a slug over 64 characters keeps its head and a hash."""
    slug = re.sub(r"[^a-z0-9]+", "-", metric.lower()).strip("-") or "metric"
    if len(slug) > MEASURE_MAX:
        digest = hashlib.sha256(metric.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug[:MEASURE_MAX - 9].rstrip('-')}-{digest}"
    return slug


def _bounds(v: CellValue) -> tuple[float, float] | None:
    if v.ci_low is not None and v.ci_high is not None:
        return v.ci_low, v.ci_high
    if v.se is not None:
        return v.value - Z95 * v.se, v.value + Z95 * v.se
    return None


def _finite(*numbers: float | None) -> bool:
    return all(n is not None and math.isfinite(n) for n in numbers)


def bmf(values: Sequence[CellValue]) -> dict[str, dict[str, dict[str, float]]]:
    """The Bencher Metric Format of one run's values."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    slugs: dict[str, str] = {}
    for v in values:
        if not _finite(v.value):
            continue
        slug = measure_slug(v.metric)
        if slugs.setdefault(slug, v.metric) != v.metric:  # two metrics, one slug: keep both apart
            slug = measure_slug(f"{v.metric}#")
        metric: dict[str, float] = {"value": v.value}
        bounds = _bounds(v)
        if bounds is not None and _finite(*bounds):
            metric["lower_value"], metric["upper_value"] = min(bounds), max(bounds)
        out.setdefault(v.cell[:BENCHMARK_MAX], {})[slug] = metric
    return out


def github_action_benchmark(values: Sequence[CellValue], *, context: str) -> dict[str, list[dict[str, Any]]]:
    """``{"smaller": [...], "bigger": [...]}``: github-action-benchmark's custom entries, by direction.
    ``context`` (machine and commit) starts each entry's ``extra``."""
    out: dict[str, list[dict[str, Any]]] = {"smaller": [], "bigger": []}
    for v in values:
        if not _finite(v.value):
            continue
        spec = metric_spec(v.metric)
        entry: dict[str, Any] = {"name": f"{v.cell} {v.metric}", "unit": spec.unit if spec else v.unit,
                                 "value": v.value,
                                 "extra": f"{context}; {spec.description if spec else v.metric}"}
        interval = (v.ci_low, v.ci_high) if v.ci_low is not None and v.ci_high is not None else None
        uncertainty = fmt_uncertainty(v.metric, v.value, interval, None if interval else v.se)
        if uncertainty:
            entry["range"] = uncertainty
        better = spec.better if spec else v.direction
        out["smaller" if better == "lower" else "bigger"].append(entry)
    return out


def direction_paths(output: str | Path) -> dict[str, Path]:
    """``out/gab.json`` -> ``{"smaller": out/gab-smaller.json, "bigger": out/gab-bigger.json}``."""
    path = Path(output)
    suffix = path.suffix or ".json"
    return {direction: path.with_name(f"{path.stem}-{direction}{suffix}") for direction in TOOLS}


def pick_run(store: Any, *, run_id: int | None = None, machine: str | None = None, branch: str | None = None) -> Any:
    """The stored run to export: ``run_id``, else the last in commit order (of ``machine``/``branch``)."""
    if run_id is not None:
        return store.run(run_id)
    runs = store.runs(machine=machine, branch=branch, limit=1)
    if not runs:
        where = " and ".join(f"{k} {v}" for k, v in (("machine", machine), ("branch", branch)) if v)
        raise QuantbenchError(f"{store.where}: no stored run{f' of {where}' if where else ''} to export "
                              "(add runs with: quantbench history add RUN.json)")
    return runs[-1]


def _write(path: Path, data: Any) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise QuantbenchError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


def export(store: Any, fmt: str, output: str | Path, *, run_id: int | None = None, machine: str | None = None,
           branch: str | None = None, metrics: Sequence[str] | None = None) -> Exported:
    """Write one stored run as ``fmt`` (see the module docstring); ``metrics`` are globs (default: all)."""
    if fmt not in FORMATS:
        raise QuantbenchError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    run = pick_run(store, run_id=run_id, machine=machine, branch=branch)
    values = [v for v in values_of(store.load_run(run.id).records)
              if not metrics or any(fnmatch.fnmatchcase(v.metric, p) for p in metrics)]
    if not values:
        raise QuantbenchError(f"{store.where}: run {run.id} has no values"
                              f"{' of ' + ', '.join(metrics) if metrics else ''} to export")
    if fmt == BMF:
        data = bmf(values)
        paths = (_write(Path(output), data),)
        return Exported(paths, run.id, run.commit_id, run.machine_id, len(data), sum(len(m) for m in data.values()))
    labels = {m["id"]: m["label"] for m in store.machines()}
    commit = f"commit {short(run.commit_id)}{'*' if run.dirty else ''}" if run.commit_id else f"run {run.id}"
    context = f"{labels.get(run.machine_id, run.machine_id)} (machine {run.machine_id}), {commit}"
    files = github_action_benchmark(values, context=context)
    # The action fails on a file without entries: a direction with none gets no file.
    paths = tuple(_write(path, files[direction]) for direction, path in direction_paths(output).items()
                  if files[direction])
    return Exported(paths, run.id, run.commit_id, run.machine_id, len({v.cell for v in values}),
                    sum(len(entries) for entries in files.values()))
