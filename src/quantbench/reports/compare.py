"""Hardware comparison: the same cells measured on several machines, side by side.

Cells align on test x model x quant x backend x batch x seq, *not* device, so a CPU run and
a CUDA run of the same suite line up. When one run holds the same cell on several devices
(or machines, after a merge), that cell is keyed by device too, in every run, so nothing is
folded together. A cell missing from some runs is kept and shown as missing. Ratios divide
each run's value by the first run's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantbench import isa
from quantbench.errors import QuantbenchError
from quantbench.reports import charts
from quantbench.reports.html import MAX_BARS, environment
from quantbench.reports.model import record_machine
from quantbench.results import METRICS, BenchmarkRecord, Run, load_run

COMPARE_SCHEMA_VERSION = 1
_BASE = ("model", "quant", "backend", "batch_size", "seq_len", "prompt_len", "new_tokens")
#: Sections opened by default in the HTML; the rest are folded.
HEADLINE = ("latency_p50_ms", "latency_p95_ms", "throughput_samples_per_s", "ttft_p50_ms", "tpot_p50_ms",
            "decode_tokens_per_s", "peak_rss_mb", "accuracy", "perplexity", "compute_share")


def machine_label(run: Run) -> str:
    """node · CPU · threads · GPU, from the run's machine_info."""
    info = run.machine_info
    qb = info.get("quantbench") or {}
    gpu = qb.get("gpu")
    gpu_name = gpu.get("name") if isinstance(gpu, dict) else gpu
    cpu = qb.get("cpu_model") or (info.get("cpu") or {}).get("brand_raw")
    found = isa.from_machine_info(info)
    if found:  # two "AMD EPYC" machines differ by their ISA: the title says which
        cpu = f"{cpu or 'CPU'} ({isa.short_label(found)})"
    parts = [(info.get("ray") or {}).get("node") or info.get("node"), cpu, _threads(qb.get("torch_threads")), gpu_name]
    return " · ".join(str(p) for p in parts if p) or (run.path.name if run.path else "run")


def _threads(n: Any) -> str | None:
    return None if n is None else f"{n} thread" + ("" if n == 1 else "s")


def labels_for(runs: list[Run], overrides: list[str] | None) -> list[str]:
    if overrides:
        if len(overrides) != len(runs):
            raise QuantbenchError(f"--label given {len(overrides)} times for {len(runs)} runs; give one per run")
        labels = list(overrides)
    else:
        labels = [machine_label(r) for r in runs]
    seen: dict[str, int] = {}
    out = []
    for label in labels:  # two runs on the same machine still need distinct column titles
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out


@dataclass
class AlignedCell:
    key: tuple
    test: str
    params: dict[str, Any]  # the aligned params (device only when it is part of the key)
    records: list[BenchmarkRecord | None]

    @property
    def label(self) -> str:
        """Distinguishing parts first (quant, backend, batch), so a truncated chart label still tells cells apart."""
        p = self.params
        shape = f"seq{p.get('seq_len')}" if p.get("prompt_len") is None else f"p{p['prompt_len']}-n{p.get('new_tokens')}"
        bits = [f"{p.get('quant')}/{p.get('backend')}", f"bs{p.get('batch_size')}", shape,
                p.get("device"), p.get("machine"), p.get("model"), self.test.removeprefix("test_")]
        return " ".join(str(b) for b in bits if b not in (None, ""))


def _base_key(record: BenchmarkRecord) -> tuple:
    return (record.test, *(record.params.get(p) for p in _BASE))


def align(runs: list[Run]) -> list[AlignedCell]:
    per_run: list[dict[tuple, list[BenchmarkRecord]]] = []
    for run in runs:
        groups: dict[tuple, list[BenchmarkRecord]] = {}
        for record in run.records:
            groups.setdefault(_base_key(record), []).append(record)
        per_run.append(groups)
    split = {base for groups in per_run for base, recs in groups.items() if len(recs) > 1}
    cells: dict[tuple, AlignedCell] = {}
    for i, groups in enumerate(per_run):
        for base, recs in groups.items():
            for record in recs:
                where = (record.params.get("device"), record_machine(record)) if base in split else ("", "")
                key = base + where
                if key not in cells:
                    params = {p: record.params.get(p) for p in _BASE}
                    if base in split:
                        params.update(device=where[0], machine=where[1])
                    cells[key] = AlignedCell(key, record.test, params, [None] * len(runs))
                cells[key].records[i] = record
    # Numbers sort as numbers (bs8 before bs32); None and text after them.
    return sorted(cells.values(), key=lambda c: tuple(
        (0, k, "") if isinstance(k, (int, float)) else (1, 0, str(k)) for k in c.key))


def _ratio(value: float | None, first: float | None) -> float | None:
    if value is None or first is None or first == 0:
        return None
    return value / first


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def comparison(runs: list[Run], labels: list[str]) -> dict[str, Any]:
    cells = align(runs)
    present = {m for c in cells for r in c.records if r for m in r.metrics}
    metrics = [m for m in METRICS if m in present]
    out_cells = []
    for cell in cells:
        values = {m: [r.metrics.get(m) if r else None for r in cell.records] for m in metrics}
        values = {m: v for m, v in values.items() if any(x is not None for x in v)}
        out_cells.append({
            "label": cell.label, "test": cell.test, "params": cell.params,
            "present": [r is not None for r in cell.records],
            "devices": [r.params.get("device") if r else None for r in cell.records],
            "values": values,
            "ratios": {m: [_ratio(x, v[0]) for x in v] for m, v in values.items()},
        })
    summary = {m: [_geomean([c["ratios"][m][i] for c in out_cells if m in c["ratios"]]) for i in range(len(runs))]
               for m in metrics}
    return {
        "schema_version": COMPARE_SCHEMA_VERSION,
        "aligned_on": ["test", *_BASE],
        "runs": [{"label": label, "source": str(run.path) if run.path else None, "datetime": run.datetime,
                  "suite": run.suite.get("name"), "machine_info": run.machine_info,
                  "commit": (run.commit_info or {}).get("id"), "n_records": len(run.records)}
                 for label, run in zip(labels, runs)],
        "metrics": {m: {"unit": METRICS[m].unit, "better": METRICS[m].better, "kind": METRICS[m].kind,
                        "description": METRICS[m].description} for m in metrics},
        "summary_geomean_ratio": summary,
        "cells": out_cells,
    }


def _verdict(ratio: float | None, better: str) -> str:
    """CSS class: is this run better or worse than the first on this metric (beyond 2%)?"""
    if ratio is None or abs(ratio - 1) < 0.02:
        return ""
    return "better" if (ratio < 1) == (better == "lower") else "worse"


def render_compare_html(data: dict[str, Any]) -> str:
    labels = [r["label"] for r in data["runs"]]
    sections = []
    for metric, meta in data["metrics"].items():
        cells = [c for c in data["cells"] if metric in c["values"]]
        shown = cells[:MAX_BARS]
        values = {(c["label"], labels[i]): v for c in shown for i, v in enumerate(c["values"][metric]) if v is not None}
        svg = charts.grouped_bar_chart(chart_id=f"compare-{metric}", title=metric,
                                       categories=[c["label"] for c in shown], groups=labels, values=values,
                                       unit=meta["unit"]) if values else None
        rows = [{"label": c["label"], "values": [
            {"text": "missing" if not c["present"][i] else charts.fmt(v), "sort": "" if v is None else repr(v),
             "ratio": None if r is None else f"{r:.2f}×", "verdict": _verdict(r, meta["better"]) if i else ""}
            for i, (v, r) in enumerate(zip(c["values"][metric], c["ratios"][metric]))]} for c in cells]
        sections.append({"metric": metric, "meta": meta, "svg": svg, "rows": rows, "open": metric in HEADLINE,
                         "truncated": len(cells) - len(shown),
                         "summary": [None if r is None else f"{r:.2f}×" for r in data["summary_geomean_ratio"][metric]]})
    machines = []
    for run in data["runs"]:
        info, qb = run["machine_info"], run["machine_info"].get("quantbench") or {}
        gpu = qb.get("gpu")
        machines.append({"label": run["label"], "items": [
            ("Source", run["source"]), ("Date", run["datetime"]), ("Node", info.get("node")),
            ("CPU", qb.get("cpu_model") or (info.get("cpu") or {}).get("brand_raw")),
            ("ISA", (isa.from_machine_info(info) or {}).get("label")),
            ("Cores", f"{qb.get('cpu_cores_physical', '—')} physical / {qb.get('cpu_cores_logical', '—')} logical"),
            ("RAM", f"{qb['ram_gb']} GB" if qb.get("ram_gb") is not None else None),
            ("GPU", (gpu.get("name") if isinstance(gpu, dict) else gpu) or "none"),
            ("Torch threads", qb.get("torch_threads")),
            ("Versions", ", ".join(f"{k} {v}" for k, v in sorted((qb.get("versions") or {}).items()))),
            ("Records", run["n_records"])]})
    n_missing = sum(1 for c in data["cells"] if not all(c["present"]))
    return environment().get_template("compare.html.j2").render(
        labels=labels, machines=machines, sections=sections, n_cells=len(data["cells"]), n_missing=n_missing,
        aligned_on=data["aligned_on"], data={"runs": labels, "cells": data["cells"]})


def split_machines(run: Run) -> list[Run]:
    """One run whose cells name several machines (a merge, a ``quantbench sweep``), as one run per
    machine in first-seen order, each with that machine's ``machine_info``; else ``[run]``."""
    groups: dict[str, list[BenchmarkRecord]] = {}
    for record in run.records:
        groups.setdefault(record_machine(record), []).append(record)
    if len(groups) < 2 or "" in groups:
        return [run]
    return [dataclasses.replace(run, machine_info=records[0].extra_info["machine"], records=records,
                                failed=[f for f in run.failed if f.get("node") == name],
                                skipped=[s for s in run.skipped if s.get("node") == name])
            for name, records in groups.items()]


def write_compare(paths: list[str | Path], out_dir: str | Path, *, labels: list[str] | None = None) -> dict[str, Path]:
    runs = [load_run(p) for p in paths]
    if len(runs) == 1:  # one file from several machines: its machines side by side
        runs = split_machines(runs[0])
    if len(runs) < 2:
        raise QuantbenchError("compare needs at least two run files, or one whose cells come from several machines")
    data = comparison(runs, labels_for(runs, labels))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "index.html").write_text(render_compare_html(data), encoding="utf-8")
    return {"compare.json": out / "compare.json", "index.html": out / "index.html"}
