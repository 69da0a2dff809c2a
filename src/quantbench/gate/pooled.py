"""Several run files of one side, pooled into one run whose cells carry every process they took.

``quantbench ab`` runs each side once per block (gate/interleave.py). Each run's cell is one process
(or several, with ``measure.processes``); pooled, the cell's ``extra_info.processes`` lists them all,
each tagged with its ``block``, so the gate can pair the two sides block by block (gate/processes.py).
The pooled rounds and reference times are the runs' in order, and the round-based figures (the
percentiles, throughput and pytest-benchmark's stats) are recomputed from them. Everything else
(memory, size, quality) is the first run's: a repeated run changes only the timings' sample.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np

from quantbench.errors import QuantbenchError
from quantbench.measures.latency import summarize


def _one_process(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """The processes a run's cell recorded, or the run's own process when it recorded none."""
    extra = bench.get("extra_info") or {}
    if isinstance(extra.get("processes"), list) and extra["processes"]:
        return [dict(p) for p in extra["processes"]]
    data = (bench.get("stats") or {}).get("data") or []
    refs = extra.get("reference_s") or []
    if not data:
        return []
    return [{"origin": "harness", "rounds": len(data), "median_ms": round(float(np.median(data)) * 1000, 5),
             "reference_median_ms": round(float(np.median(refs)) * 1000, 5) if refs else None}]


def _stats(data: list[float], template: dict[str, Any]) -> dict[str, Any]:
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for value in data:
        stats.update(value)
    out = dict(template)
    out.update({field: getattr(stats, field) for field in ("min", "max", "mean", "stddev", "rounds", "median", "iqr",
                                                           "q1", "q3", "iqr_outliers", "stddev_outliers",
                                                           "outliers", "ld15iqr", "hd15iqr", "ops", "total")})
    out["data"] = data
    return out


def pool_runs(paths: list[Path], blocks: list[int]) -> dict[str, Any]:
    """One pytest-benchmark JSON from ``paths`` (one per block, in ``blocks`` order)."""
    runs = []
    for path in paths:
        try:
            runs.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise QuantbenchError(f"{path}: cannot read this run's results ({exc})") from None
    pooled = copy.deepcopy(runs[0])
    by_name: dict[str, dict[str, Any]] = {}
    for run, block in zip(runs, blocks):
        for bench in run.get("benchmarks", []):
            name = bench.get("fullname") or bench.get("name")
            entry = by_name.setdefault(name, {"template": bench, "data": [], "refs": [], "processes": []})
            extra = bench.get("extra_info") or {}
            entry["data"].extend((bench.get("stats") or {}).get("data") or [])
            entry["refs"].extend(extra.get("reference_s") or [])
            entry["processes"].extend({**p, "block": block} for p in _one_process(bench))
    benchmarks = []
    for entry in by_name.values():
        bench = copy.deepcopy(entry["template"])
        extra = bench.setdefault("extra_info", {})
        data = entry["data"]
        if data and extra.get("timed_region") in ("model", "end_to_end"):  # a classification cell's rounds
            params = bench.get("params") or {}
            extra.update(summarize(data, batch_size=int(params.get("batch_size") or 1),
                                   seq_len=int(params.get("seq_len") or 1)))
        if len(entry["refs"]) == len(data):
            extra["reference_s"] = entry["refs"]
        else:  # some run timed no reference: the pooled rounds cannot be paired with one
            extra.pop("reference_s", None)
        extra["processes"] = entry["processes"]
        extra["pooled_runs"] = len(paths)
        bench["stats"] = _stats(data, bench.get("stats") or {})
        benchmarks.append(bench)
    pooled["benchmarks"] = benchmarks
    # Cells that failed in any run are failed in the pool: a regression that crashes is one.
    failed: dict[str, Any] = {}
    for run in runs:
        for entry in (run.get("quantbench") or {}).get("failed") or []:
            failed.setdefault(str(entry.get("test")), entry)
    if failed:
        pooled.setdefault("quantbench", {})["failed"] = list(failed.values())
    return pooled
