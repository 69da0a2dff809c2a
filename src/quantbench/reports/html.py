"""The self-contained ``index.html``: one file with inline CSS, JS and SVG; no network.

Rendering goes through jinja2 with autoescape on, and data embedded for scripts goes
through :func:`json_for_script`, so names from models, datasets and machines cannot inject
markup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from quantbench import isa
from quantbench.reports import charts
from quantbench.reports.batch_sensitivity import batch_rows
from quantbench.reports.model import Analysis, VariantSummary, pareto_front, record_machine, short_labels
from quantbench.reports.quality_view import lm_eval_names, quality_tables, scoring_texts
from quantbench.reports.serving_view import NOT_A_SUBMISSION, capacity_rows, serving_charts
from quantbench.reports.uncertainty import fmt_figure
from quantbench.results import LM_EVAL_PREFIX, metric_spec

TEMPLATES = Path(__file__).parent / "templates"
#: Bars beyond this count would make a chart unreadable; the table still has every cell.
MAX_BARS = 60
MAX_LINE_CHARTS = 12


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = charts.fmt
    env.filters["tojson_script"] = json_for_script
    return env


def json_for_script(data: Any) -> Markup:
    """JSON safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators survive raw."""
    text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    for raw, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                     ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, esc)
    return Markup(text)


@dataclass(frozen=True)
class Column:
    key: str  # a metric name, or one of the special keys handled in _cell
    title: str
    numeric: bool = True


COLUMNS = (
    Column("model", "Model", False), Column("quant", "Quant", False), Column("backend", "Backend", False),
    Column("device", "Device", False), Column("batch_size", "Batch"), Column("seq_len", "Seq / prompt"),
    Column("new_tokens", "New tokens"),
    Column("latency_p50_ms", "p50 ms"), Column("latency_p95_ms", "p95 ms"),
    Column("throughput_samples_per_s", "samples/s"),
    Column("ttft_p50_ms", "TTFT ms"), Column("tpot_p50_ms", "TPOT ms"), Column("decode_tokens_per_s", "decode tok/s"),
    Column("peak_rss_mb", "Peak RSS MB"),
    Column("disk_size_mb", "Disk MB"), Column("achieved_gflops", "GFLOP/s"), Column("compute_share", "Share of peak"),
    Column("bandwidth_share", "Share of bandwidth"), Column("cost_per_million_inferences", "USD / M inferences"),
    Column("cost_per_million_output_tokens", "USD / M tokens"),
    Column("perplexity", "PPL"), Column("kl_divergence", "KL"),
    Column("top1_agreement", "Top-1"), Column("accuracy", "Accuracy"), Column("balanced_accuracy", "Bal. acc"),
    Column("accuracy_delta_pts", "Δ acc pts"), Column("dp_difference", "DP diff"),
    Column("eo_difference", "EO diff"), Column("flip_rate", "Flip rate"),
    Column("speedup", "Speed-up vs fp32"),
)


def columns_for(analysis: Analysis) -> tuple[Column, ...]:
    """The table's columns: the fixed ones, with the run's lm-eval figures (not their deltas, which
    the quality section lists) before the speed-up, so a task's score sits beside the speed."""
    present = {name for row in analysis.rows for name in row.metrics}
    extra = tuple(Column(name, name.removeprefix(LM_EVAL_PREFIX).replace(".", " "))
                  for name in lm_eval_names(present) if not name.endswith("_delta"))
    return COLUMNS[:-1] + extra + COLUMNS[-1:]


def _cell(row, column: Column) -> dict[str, Any]:
    if column.key in ("model", "quant", "backend", "device"):
        text = getattr(row.variant, column.key)
        return {"text": text, "sort": text}
    if column.key in ("batch_size", "seq_len", "new_tokens"):
        value = getattr(row, column.key)
        return {"text": "—" if value is None else str(value), "sort": "" if value is None else value}
    value = row.speedup if column.key == "speedup" else row.metrics.get(column.key)
    if value is None:
        return {"text": "—", "sort": ""}
    if column.key == "speedup":
        text = f"{value:.2f}×"
    elif column.key in row.intervals or column.key in row.std_errors:
        text = fmt_figure(column.key, value, row.intervals.get(column.key), row.std_errors.get(column.key))
    else:
        text = charts.fmt(value)
    return {"text": text + row.marks.get(column.key, ""), "sort": repr(float(value))}


def _machine_summary(info: dict[str, Any]) -> list[tuple[str, str]]:
    qb = info.get("quantbench") or {}
    cpu = info.get("cpu") or {}
    gpu = qb.get("gpu")
    items = [
        ("Machine", info.get("node")),
        ("CPU", qb.get("cpu_model") or cpu.get("brand_raw") or info.get("processor")),
        ("ISA", (isa.from_machine_info(info) or {}).get("label")),
        ("Cores", _cores(qb, cpu)),
        ("RAM", f"{qb['ram_gb']} GB" if qb.get("ram_gb") is not None else None),
        ("GPU", (gpu.get("name") if isinstance(gpu, dict) else gpu) or "none"),
        ("Torch threads", qb.get("torch_threads")),
        ("System", " ".join(str(x) for x in (info.get("system"), info.get("release")) if x)),
        ("Python", " ".join(str(x) for x in (info.get("python_implementation"), info.get("python_version")) if x)),
    ]
    return [(k, "—" if v in (None, "") else str(v)) for k, v in items]


def _machines(run) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for record in run.records:
        machine = record.extra_info.get("machine")
        name = record_machine(record)
        if name and isinstance(machine, dict):
            seen.setdefault(name, machine)
    return [{"name": name, "items": _machine_summary(info)} for name, info in seen.items()] if len(seen) > 1 else []


def _cores(qb: dict, cpu: dict) -> str | None:
    phys, logical = qb.get("cpu_cores_physical"), qb.get("cpu_cores_logical") or cpu.get("count")
    if phys and logical:
        return f"{phys} physical / {logical} logical"
    return str(logical) if logical else None


def _by_group(summary: VariantSummary) -> dict[str, dict[str, Any]]:
    """Group metrics from the first fairness block that has them (probe, metric frame...)."""
    fairness = summary.quality_extra.get("fairness")
    if not isinstance(fairness, dict):
        return {}
    blocks = [fairness] + [v for v in fairness.values() if isinstance(v, dict)]
    for block in blocks:
        groups = block.get("by_group")
        if isinstance(groups, dict) and groups:
            return {str(g): m for g, m in groups.items() if isinstance(m, dict)}
    return {}


def build_charts(analysis: Analysis) -> list[dict[str, Any]]:
    """Each chart: title, caption, svg (or None plus an 'empty' reason)."""
    labels = short_labels([s.variant for s in analysis.variants])
    # One colour per quant x backend in every chart, so a method keeps its colour across panels.
    kinds = sorted({(s.variant.quant, s.variant.backend) for s in analysis.variants})
    kind_color = {k: charts.color(i) for i, k in enumerate(kinds)}
    color_of = {s.variant: kind_color[(s.variant.quant, s.variant.backend)] for s in analysis.variants}
    out: list[dict[str, Any]] = []

    def add(chart_id: str, title: str, caption: str, svg: Markup | None, empty: str = "") -> None:
        out.append({"id": chart_id, "title": title, "caption": caption, "svg": svg, "empty": empty})

    # Latency vs batch size: one chart per model x device x seq length, one line per variant.
    panels: dict[tuple, dict] = {}
    for row in analysis.rows:
        p50 = row.metrics.get("latency_p50_ms")
        if p50 is None or row.batch_size is None or row.test == "test_generation":
            continue  # generation cells get their own TTFT and tokens/s charts
        v = row.variant
        panel = panels.setdefault((v.model, v.device, v.machine, row.seq_len), {})
        panel.setdefault((v.quant, v.backend), {})[row.batch_size] = p50
    for i, ((model, device, machine, seq), series) in enumerate(sorted(panels.items(), key=str)):
        if i == MAX_LINE_CHARTS:
            add("latency-more", "More latency charts", "", None,
                f"{len(panels) - MAX_LINE_CHARTS} more model/device/sequence panels omitted; the table has them.")
            break
        cats = sorted({b for pts in series.values() for b in pts}, key=_num_key)
        where = " · ".join(str(x) for x in (model, device, machine, f"seq {seq}") if x)
        ordered = sorted(series.items())
        add(f"latency-{i}", f"Latency p50 vs batch size — {where}", "Lower is better.",
            charts.line_chart(chart_id=f"latency-{i}", title=f"Latency p50 vs batch size, {where}",
                              categories=cats, series=[(f"{q} · {b}", pts) for (q, b), pts in ordered],
                              colors=[kind_color[k] for k, _ in ordered], x_title="batch size",
                              y_title="p50 latency (ms)"))
    _generation_charts(analysis, add, kind_color, labels)
    serving_charts(analysis, add, kind_color)
    limits = (analysis.run.machine_info.get("quantbench") or {}).get("limits") or {}
    for device, measured in sorted(limits.items()):
        from quantbench.reports.roofline import roofline_chart

        svg = roofline_chart(chart_id=f"roofline-{device}", limits=measured,
                             rows=[r for r in analysis.rows if r.variant.device == device],
                             colors={f"{q} · {b}": c for (q, b), c in kind_color.items()})
        add(f"roofline-{device}", f"Roofline — {device}",
            "This machine's measured peaks (a flat roof per kernel family the cells run; emulated ones, slow "
            "reference paths on this CPU, are not drawn) and memory bandwidth (dashed), "
            "with every cell placed by arithmetic intensity and achieved GFLOP/s; generation cells appear as "
            "prefill and decode points. See docs/efficiency.md.", svg,
            "" if svg else "No cell carries efficiency figures for this device.")

    variants = analysis.variants[:MAX_BARS]
    more = f" Showing {MAX_BARS} of {len(analysis.variants)} variants." if len(analysis.variants) > MAX_BARS else ""

    def best(summary: VariantSummary, name: str) -> tuple[float | None, Any]:
        pts = [(r.metrics[name], r.batch_size) for r in summary.rows if name in r.metrics]
        return max(pts, key=lambda p: p[0]) if pts else (None, None)

    bars = []
    for s in variants:
        value, bs = best(s, "throughput_samples_per_s")
        bars.append((f"{labels[s.variant]} (bs {bs})" if bs is not None else labels[s.variant], value))
    colors = [color_of[s.variant] for s in variants]
    _bars(add, "throughput", "Throughput", "Best over batch sizes; higher is better." + more, bars, "samples/s",
          colors)
    _bars(add, "size", "Size on disk", "Bytes of the saved artifact; lower is better." + more,
          [(labels[s.variant], s.metric("disk_size_mb")) for s in variants], "MB", colors)
    _bars(add, "memory", "Peak memory", "Peak RSS over the baseline, largest over the variant's cells; "
          "lower is better." + more, [(labels[s.variant], s.metric("peak_rss_mb")) for s in variants], "MB", colors)

    points = [(labels[s.variant], s.speedup, s.accuracy_delta_pts, s.on_pareto_front)
              for s in analysis.variants if s.speedup is not None and s.accuracy_delta_pts is not None]
    add("pareto", "Accuracy change vs speed-up",
        "Speed-up is the geometric mean over the variant's cells. Up and right is better; the Pareto front "
        "holds the variants nothing else beats on both.",
        charts.scatter_chart(chart_id="pareto", title="Accuracy change vs speed-up", points=points,
                             x_title="speed-up over fp32 (x)", y_title="accuracy change (pts)") if points else None,
        "" if points else "Needs both accuracy and latency for the same variants.")

    group_values: dict[tuple[str, str], float] = {}
    groups: list[str] = []
    cats = []
    for s in variants:
        by_group = _by_group(s)
        for group, m in by_group.items():
            value = m.get("accuracy", m.get("selection_rate"))
            if isinstance(value, (int, float)):
                group_values[(labels[s.variant], group)] = float(value)
                if group not in groups:
                    groups.append(group)
        if by_group:
            cats.append(labels[s.variant])
    add("fairness-groups", "Accuracy per group",
        "Accuracy of each sensitive group; a wide gap within a variant is a fairness problem." + more,
        charts.grouped_bar_chart(chart_id="fairness-groups", title="Accuracy per group", categories=cats,
                                 groups=groups, values=group_values, unit="") if group_values else None,
        "" if group_values else "No per-group fairness data in this run.")
    _bars(add, "flip-rate", "Counterfactual flip rate",
          "Share of sentence pairs differing only in a person term whose label flips; lower is better." + more,
          [(labels[s.variant], s.quality.get("flip_rate")) for s in variants], "", colors)
    # A panel with nothing to show is left out (an LLM-only run has no classifier latency panel); a
    # note that panels were cut for space stays.
    return [c for c in out if c["svg"] is not None or c["id"].endswith("-more")]


def _generation_charts(analysis: Analysis, add, kind_color: dict, labels: dict) -> None:
    """TTFT and decode tokens/s against batch size, and quality loss against decode speed-up."""
    for metric, title, unit, better in (("ttft_p50_ms", "Time to first token (p50)", "ms", "Lower"),
                                        ("decode_tokens_per_s", "Decode tokens/s", "tokens/s", "Higher")):
        panels: dict[tuple, dict] = {}
        for row in analysis.rows:
            value = row.metrics.get(metric)
            if value is None or row.test != "test_generation":
                continue
            v = row.variant
            panel = panels.setdefault((v.model, v.device, v.machine, row.seq_len, row.new_tokens), {})
            panel.setdefault((v.quant, v.backend), {})[row.batch_size] = value
        for i, ((model, device, machine, prompt, new), series) in enumerate(sorted(panels.items(), key=str)):
            if i == MAX_LINE_CHARTS:
                break
            chart_id = f"{metric.split('_')[0]}-{i}"
            where = " · ".join(str(x) for x in (model, device, machine, f"prompt {prompt}", f"{new} new tokens") if x)
            ordered = sorted(series.items())
            add(chart_id, f"{title} vs batch size — {where}", f"{better} is better.",
                charts.line_chart(chart_id=chart_id, title=f"{title} vs batch size, {where}",
                                  categories=sorted({b for pts in series.values() for b in pts}, key=_num_key),
                                  series=[(f"{q} · {b}", pts) for (q, b), pts in ordered],
                                  colors=[kind_color[k] for k, _ in ordered], x_title="batch size",
                                  y_title=f"{title} ({unit})"))
    generation = [s for s in analysis.variants if s.is_generation and s.speedup is not None]
    if not generation:
        return
    use_kl = all(s.quality.get("kl_divergence") is not None for s in generation)
    name, axis = ("kl_divergence", "KL vs fp32 (nats)") if use_kl else ("perplexity_delta_pct", "ΔPPL vs fp32 (%)")
    scored = [s for s in generation if s.quality.get(name) is not None]
    # Both axes maximised for the front: speed-up, and the negated quality loss.
    front = pareto_front([(s.speedup, -s.quality[name]) for s in scored])
    points = [(labels[s.variant], s.speedup, s.quality[name], on) for s, on in zip(scored, front)]
    add("generation-pareto", f"{'KL divergence' if use_kl else 'Perplexity change'} vs decode speed-up",
        "Decode speed-up is fp32's TPOT p50 over the variant's (geometric mean over batch sizes), against fp32 on "
        "pytorch for the same model and device. Down and right is better; the Pareto front holds the variants "
        "nothing else beats on both.",
        charts.scatter_chart(chart_id="generation-pareto", title="Quality loss vs decode speed-up", points=points,
                             x_title="decode speed-up over fp32 (x)", y_title=axis) if points else None,
        "" if points else "Needs perplexity/KL and generation timings for the same variants.")


def _bars(add, chart_id: str, title: str, caption: str, bars: list, unit: str, colors: list[str]) -> None:
    if any(v is not None for _, v in bars):
        add(chart_id, title, caption, charts.bar_chart(chart_id=chart_id, title=title, bars=bars, unit=unit,
                                                        colors=colors))
    else:
        add(chart_id, title, caption, None, "Not measured in this run.")


def _num_key(value: Any) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def context(analysis: Analysis, *, command: str | None = None) -> dict[str, Any]:
    run = analysis.run
    info = run.machine_info
    versions = (info.get("quantbench") or {}).get("versions") or {}
    columns = columns_for(analysis)
    rows = [{"cells": [_cell(r, c) for c in columns], "id": r.cell_id, "test": r.test} for r in analysis.rows]
    fairness_rows = []
    for s in analysis.variants:
        for group, m in _by_group(s).items():
            fairness_rows.append({"variant": s.variant.label, "group": group,
                                  "accuracy": m.get("accuracy"), "selection_rate": m.get("selection_rate"),
                                  "count": m.get("count")})
    batch = [{"variant": b.variant.variant.label, "figure": b.figure, "batch_size": b.batch_size,
              "verdict": b.verdict, "sort_change": "" if b.change is None else repr(b.change), **b.texts()}
             for s in analysis.variants for b in batch_rows(s)]
    return {
        "title": f"quantbench report — {run.suite.get('name') or 'run'}",
        "machine": _machine_summary(info),
        "isa_label": (isa.from_machine_info(info) or {}).get("label"),
        # Cells from several machines (a merge, a sweep over a Ray cluster): each one, side by side.
        "machines": _machines(run),
        "versions": sorted((str(k), str(v)) for k, v in versions.items()),
        "suite": run.suite,
        "date": run.datetime or "—",
        "commit": run.commit_info,
        "command": command or run.suite.get("command"),
        "columns": columns,
        "rows": rows,
        "charts": build_charts(analysis),
        "recommendations": analysis.recommendations,
        "has_accuracy": analysis.has_accuracy,
        "tolerance": analysis.fairness_tolerance,
        "quality_budget": analysis.quality_budget,
        "baseline_notes": sorted({str(r.extra_info["baseline_note"]) for r in run.records
                                  if r.extra_info.get("baseline_note")}),
        "fairness_rows": fairness_rows,
        "quality_tables": quality_tables(analysis),
        "scoring": scoring_texts(analysis),
        "batch_rows": batch,
        "serving_rows": capacity_rows(analysis),
        "serving_note": NOT_A_SUBMISSION,
        "recommend_by": analysis.recommend_by,
        "failed": run.failed,
        "skipped": run.skipped,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "metrics_help": {c.key: metric_spec(c.key).description for c in columns if metric_spec(c.key)},
        # Machine-readable copy of the table for anyone scripting against the page.
        "data": {"cells": [{"id": r.cell_id, "test": r.test, "variant": r.variant.label,
                            "batch_size": r.batch_size, "seq_len": r.seq_len, "new_tokens": r.new_tokens,
                            "speedup": r.speedup, "metrics": r.metrics,
                            "intervals": {k: list(v) for k, v in r.intervals.items()},
                            "std_errors": r.std_errors} for r in analysis.rows]},
    }


def render_html(analysis: Analysis, *, command: str | None = None, trend_page: str | None = None) -> str:
    """The page; ``trend_page`` (a relative link to the history's trend page) adds a link to it."""
    return environment().get_template("report.html.j2").render(**context(analysis, command=command),
                                                               trend_page=trend_page)
