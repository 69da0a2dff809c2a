"""Machine-readable outputs: ``report.json`` for dashboards, github-action-benchmark files.

github-action-benchmark takes one direction per file (``customSmallerIsBetter`` or
``customBiggerIsBetter``), so metrics are split by :data:`~quantbench.results.METRICS`
``better`` into ``github-action-benchmark-smaller.json`` and ``-bigger.json``; a workflow
runs the action twice, once per file. A figure with an interval gets the action's optional
``range`` ("± 9.1", or "95% CI [0.862, 0.903]").

report.json adds, beside each cell's and variant's figures, their 95 % intervals, stated standard
errors, how quality was scored, the zero-shot floor flag and the batch-sensitivity rows; layout
version 1 is unchanged for every key it had.
"""

from __future__ import annotations

from typing import Any

from quantbench.reports.batch_sensitivity import batch_rows
from quantbench.reports.model import Analysis, Recommendation, VariantSummary
from quantbench.reports.uncertainty import fmt_uncertainty
from quantbench.results import (
    METRICS,
    QUALITY_SCORING,
    ZERO_SHOT_AT_FLOOR,
    given_std_errors,
    metric_spec,
)

#: Version of report.json's layout; bump on any breaking change.
REPORT_SCHEMA_VERSION = 1
SPEEDUP = "speedup_vs_fp32"


def _recommendation(rec: Recommendation) -> dict[str, Any]:
    chosen = rec.variant
    return {"device": rec.device, "model": rec.model, "status": rec.status, "message": rec.message,
            "variant": None if chosen is None else {
                "model": chosen.variant.model, "quant": chosen.variant.quant, "backend": chosen.variant.backend,
                "device": chosen.variant.device, "speedup_vs_fp32": chosen.speedup, "accuracy": chosen.accuracy},
            "rejected": [{"variant": label, "reason": why} for label, why in rec.rejected],
            "notes": [{"variant": label, "note": note} for label, note in rec.notes]}


def _intervals(intervals: dict[str, tuple[float, float]]) -> dict[str, list[float]]:
    return {name: [lo, hi] for name, (lo, hi) in intervals.items()}


def _batch_sensitivity(summary: VariantSummary) -> list[dict[str, Any]]:
    return [{"figure": b.figure, "batch_size": b.batch_size, "unpadded": b.unpadded, "at_batch": b.at_batch,
             "change": b.change, "change_unit": b.unit, "change_ci95": list(b.change_interval) if b.change_interval
             else None, "predictions_changed": b.predictions_changed, "verdict": b.verdict} for b in batch_rows(summary)]


def report_json(analysis: Analysis, *, command: str | None = None, generated_at: str | None = None) -> dict[str, Any]:
    """Every cell with its own metrics (not the joined ones), plus run context and verdicts."""
    run = analysis.run
    speedups = {(r.test, r.cell_id): (r.speedup, r.reference) for r in analysis.rows}
    cells = []
    for record in run.records:
        speedup, reference = speedups.get((record.test, record.cell_id), (None, None))
        cells.append({
            "test": record.test, "cell_id": record.cell_id, "name": record.raw.get("name"),
            "params": record.params, "dataset": record.extra_info.get("dataset"),
            "machine": (record.extra_info.get("machine") or {}).get("node")
            if isinstance(record.extra_info.get("machine"), dict) else None,
            "metrics": record.metrics, SPEEDUP: speedup, "fp32_reference": reference,
            "n_samples": len(record.samples_s),
            # 95 % intervals [lo, hi] and stated standard errors of the cell's own figures.
            "intervals": _intervals(record.intervals), "standard_errors": given_std_errors(record.extra_info),
            **{key: record.extra_info[key] for key in (QUALITY_SCORING, ZERO_SHOT_AT_FLOOR) if key in record.extra_info},
        })
    variants = [{
        "model": s.variant.model, "quant": s.variant.quant, "backend": s.variant.backend,
        "device": s.variant.device, "machine": s.variant.machine or None, "dataset": s.dataset,
        SPEEDUP: s.speedup, "accuracy_delta_pts": s.accuracy_delta_pts, "pareto_front": s.on_pareto_front,
        "quality": s.quality, "quality_intervals": _intervals(s.quality_ci), "quality_standard_errors": s.quality_se,
        "quality_scoring": s.quality_scoring, "zero_shot_at_floor": s.quality_extra.get(ZERO_SHOT_AT_FLOOR),
        "batch_sensitivity": _batch_sensitivity(s), "quant_config": s.perf_extra.get("quant_config"),
    } for s in analysis.variants]
    present = {name for record in run.records for name in record.metrics}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "generator": "quantbench",
        "generated_at": generated_at,
        "source": str(run.path) if run.path else None,
        "run_schema_version": (run.raw.get("quantbench") or {}).get("schema_version"),
        "datetime": run.datetime,
        "command": command or run.suite.get("command"),
        "machine": run.machine_info,
        "commit": run.commit_info,
        "suite": run.suite,
        "metrics": {name: {"unit": m.unit, "better": m.better, "kind": m.kind, "description": m.description}
                    for name, m in [*METRICS.items(), *((n, metric_spec(n)) for n in sorted(present - set(METRICS)))]},
        "cells": cells,
        "variants": variants,
        "recommendations": [_recommendation(r) for r in analysis.recommendations],
        "fairness_tolerance": analysis.fairness_tolerance,
        "failed": run.failed,
        "skipped": run.skipped,
    }


def github_action_benchmark(analysis: Analysis) -> dict[str, list[dict[str, Any]]]:
    """``{"smaller": [...], "bigger": [...]}`` entries of ``{name, unit, value, extra}``."""
    run = analysis.run
    node = run.machine_info.get("node") or "unknown machine"
    out: dict[str, list[dict[str, Any]]] = {"smaller": [], "bigger": []}
    speedups = {(r.test, r.cell_id): r.speedup for r in analysis.rows}
    for record in run.records:
        extra = f"{record.test}[{record.cell_id}] on {node}"
        intervals, errors = record.intervals, given_std_errors(record.extra_info)
        for name, value in record.metrics.items():
            metric = metric_spec(name)
            entry = {"name": f"{record.test}[{record.cell_id}] {name}", "unit": metric.unit, "value": value,
                     "extra": f"{extra}; {metric.description}"}
            uncertainty = fmt_uncertainty(name, value, intervals.get(name), errors.get(name))
            if uncertainty:  # the action shows "range" beside the value
                entry["range"] = uncertainty
            out["smaller" if metric.better == "lower" else "bigger"].append(entry)
        speedup = speedups.get((record.test, record.cell_id))
        if speedup is not None:
            out["bigger"].append({"name": f"{record.test}[{record.cell_id}] {SPEEDUP}", "unit": "x",
                                  "value": speedup, "extra": f"{extra}; p50 latency of fp32 / this cell"})
    return out
