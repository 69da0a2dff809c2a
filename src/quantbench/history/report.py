"""The trend page: ``quantbench history report --db URL_OR_PATH -o DIR`` writes ``DIR/index.html``.

One self-contained file (inline CSS, JS and SVG; no network), drawn with the run report's chart helpers
(:mod:`quantbench.reports.charts`) and its stylesheet, so both pages read alike:

* per cell and metric, a chart of the values across commits (x: the store's commit order, labelled with
  short commit ids), one line per machine fingerprint (hardware over time in one picture), each point
  with its 95 % interval (:mod:`quantbench.history.series` says which);
* the change points found per machine marked on the chart at their commit, with the size of the step,
  and the current trend stated under it;
* a table of every change point (cell, metric, machine, commit, step %, regression or improvement) and one
  of the significant current trends;
* one folding section per cell, a filter on the cell's name, a metric selector and "only cells with a
  change point", so a history of many cells stays readable.

The page's own check (``html[data-trendcheck]``, with every section opened by the ``#selfcheck`` hash)
records each chart's lines (machine, rendered length), its points and change-point markers with their
rendered positions, and what the filter shows; the run report's check (``html[data-selfcheck]``) records
script errors. tests/unit/history/test_trend_page.py reads both in headless Chromium.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import jinja2
from markupsafe import Markup, escape

from quantbench.errors import QuantbenchError
from quantbench.history.series import History, Series, build, short
from quantbench.reports import charts
from quantbench.reports.html import TEMPLATES as REPORT_TEMPLATES
from quantbench.reports.html import json_for_script
from quantbench.results import metric_spec

TEMPLATES = Path(__file__).parent / "templates"
#: Every cell's section is open on load when the page has no more than this many (else those with a change
#: point).
OPEN_ALL_UP_TO = 8
#: Sections open on load when no cell has a change point (and there are more than OPEN_ALL_UP_TO).
OPEN_FIRST = 3
#: Legend labels longer than this are cut (the machines table has them whole).
LEGEND_CHARS = 96


def environment() -> jinja2.Environment:
    """This package's templates first, then the run report's (its stylesheet and scripts)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(REPORT_TEMPLATES)]),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = charts.fmt
    env.filters["tojson_script"] = json_for_script
    return env


def _pct(share: float | None) -> str:
    return "—" if share is None or not math.isfinite(share) else f"{share * 100:+.1f} %"


def _value(value: float | None, unit: str) -> str:
    return f"{charts.fmt(value)} {unit}".strip()


def trend_chart(*, chart_id: str, title: str, commits: Sequence[str], lines: Sequence[dict[str, Any]],
                y_title: str, cell: str = "", metric: str = "", unit: str = "") -> Markup:
    """Values across commits: one line per machine (``lines``: machine, label, color, series), points with
    their intervals, change points as dashed verticals at their commit labelled with the step, and the
    Theil-Sen line of a significant current trend."""
    n = max(len(commits), 1)
    left, right, plot_h = 64, charts.WIDTH - 20, 220
    # Change-point labels stack above the plot, one row per label at the same commit.
    stack: dict[int, int] = {}
    for line in lines:
        for step in line["series"].steps:
            stack[step.x] = stack.get(step.x, 0) + 1
    top = 16 + 12 * max(stack.values(), default=0)
    values = [v for line in lines for p in line["series"].points
              for v in (p.value, p.low, p.high) if v is not None and math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    ticks = charts.nice_ticks(lo - pad if lo - pad < 0 or lo < 0 else max(lo - pad, 0.0), hi + pad)
    y_of = lambda v: top + plot_h - (v - ticks[0]) / (ticks[-1] - ticks[0]) * plot_h  # noqa: E731
    step_w = (right - left) / n
    x_of = lambda i: left + step_w * (i + 0.5)  # noqa: E731
    parts = charts._y_axis(ticks, y_of, left, right, y_title)
    # Commit labels: every k-th, and every commit where a change point is, rotated to fit.
    every = max(1, math.ceil(n / ((right - left) / 14)))
    marked = set(stack)
    base = top + plot_h
    for i, commit in enumerate(commits):
        if i % every and i not in marked:
            continue
        x = x_of(i)
        weight = ' font-weight="700"' if i in marked else ""
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" stroke="#9aa3ad"/>'
                     f'<text class="tick commit" data-commit="{escape(commit)}" x="{x:.1f}" y="{base + 12}" '
                     f'text-anchor="end" transform="rotate(-45 {x:.1f} {base + 12})"{weight}>'
                     f'<title>{escape(commit)}</title>{escape(short(commit))}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{base + 62}" text-anchor="middle" class="axis-title">'
                 f'commit (store order: commit time, first parent)</text>')
    spread = len(lines)
    placed: dict[int, int] = {}
    for k, line in enumerate(lines):
        series: Series = line["series"]
        color, label, machine = line["color"], line["label"], series.machine
        dx = (k - (spread - 1) / 2) * 3  # side by side where machines share a commit
        xy = [(x_of(p.x) + dx, y_of(p.value), p) for p in series.points]
        for x, _, p in xy:
            if p.low is not None and p.high is not None:
                parts.append(f'<line class="interval" data-machine="{escape(machine)}" x1="{x:.1f}" x2="{x:.1f}" '
                             f'y1="{y_of(p.low):.1f}" y2="{y_of(p.high):.1f}" stroke="{color}" stroke-opacity="0.5" '
                             f'stroke-width="1.5"/>')
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in xy)
            parts.append(f'<polyline class="mark line" data-machine="{escape(machine)}" points="{path}" fill="none" '
                         f'stroke="{color}" stroke-width="2"><title>{escape(label)}</title></polyline>')
        for x, y, p in xy:
            interval = f" [{charts.fmt(p.low)}, {charts.fmt(p.high)}] ({p.interval_from})" if p.low is not None else ""
            parts.append(f'<circle class="mark point" data-machine="{escape(machine)}" '
                         f'data-commit="{escape(p.commit)}" '
                         f'cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>{escape(label)} at '
                         f'{escape(short(p.commit))} ({len(p.runs)} run{"s" if len(p.runs) > 1 else ""}): '
                         f'{_value(p.value, unit)}{interval}</title></circle>')
        trend = series.trend
        if trend is not None and trend.significant:
            seg = [p.value for p in series.points[trend.start:trend.stop]]
            intercept = statistics.median(v - trend.slope * j for j, v in enumerate(seg))
            first, last = series.points[trend.start], series.points[trend.stop - 1]
            parts.append(f'<line class="trendline" data-machine="{escape(machine)}" x1="{x_of(first.x) + dx:.1f}" '
                         f'y1="{y_of(intercept):.1f}" x2="{x_of(last.x) + dx:.1f}" '
                         f'y2="{y_of(intercept + trend.slope * (len(seg) - 1)):.1f}" stroke="{color}" '
                         f'stroke-width="1.5" stroke-dasharray="2 3"><title>{escape(label)}: '
                         f'{escape(series.trend_text())}</title></line>')
        for step in series.steps:
            x = x_of(step.x) + dx
            row = placed.get(step.x, 0)
            placed[step.x] = row + 1
            low, high = step.rel_step_interval
            tip = (f"{label}: change point at {step.commit} ({_pct(step.rel_step)}, 95 % [{_pct(low)}, "
                   f"{_pct(high)}], {_value(step.mean_before, unit)} to "
                   f"{_value(step.mean_after, unit)}, p = {step.p_value:.3f}): {step.verdict}")
            parts.append(f'<line class="changepoint {escape(step.verdict)}" data-machine="{escape(machine)}" '
                         f'data-commit="{escape(step.commit)}" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" '
                         f'y2="{top + plot_h}" stroke="{color}" stroke-width="1.5" stroke-dasharray="5 3">'
                         f'<title>{escape(tip)}</title></line>')
            lx = min(max(x, left + 24), right - 24)
            parts.append(f'<text class="step-label" x="{lx:.1f}" y="{top - 4 - 12 * row}" text-anchor="middle" '
                         f'fill="{color}" style="fill:{color}" font-weight="700"><title>{escape(tip)}</title>'
                         f'{"▲" if step.step > 0 else "▼"} {escape(_pct(step.rel_step))}</text>')
    legend_y = base + 82
    for k, line in enumerate(lines):
        y = legend_y + 18 * k
        text = f"{line['series'].machine[:8]} · {line['label']}"
        text = text if len(text) <= LEGEND_CHARS else text[: LEGEND_CHARS - 1] + "…"
        parts.append(f'<g class="legend-entry" data-machine="{escape(line["series"].machine)}">'
                     f'<rect x="{left}" y="{y - 9}" width="12" height="12" fill="{line["color"]}"/>'
                     f'<text x="{left + 16}" y="{y + 1}" class="legend"><title>{escape(line["label"])}</title>'
                     f'{escape(text)}</text></g>')
    height = legend_y + 18 * len(lines) + 4
    svg = str(charts._svg(chart_id, title, height, parts))
    return Markup(svg.replace('<svg class="chart"', f'<svg class="chart trend" data-cell="{escape(cell)}" '
                                                   f'data-metric="{escape(metric)}"', 1))


def context(history: History, *, command: str | None = None, back_link: str | None = None) -> dict[str, Any]:
    color = {m["id"]: charts.color(k) for k, m in enumerate(history.machines)}
    label = {m["id"]: m["label"] for m in history.machines}
    by_cell: dict[str, list[Series]] = {}
    for s in history.series:
        by_cell.setdefault(s.cell, []).append(s)
    open_all = len(by_cell) <= OPEN_ALL_UP_TO
    anchors = {cell: f"cell-{k}" for k, cell in enumerate(by_cell)}
    sections = []
    for k, (cell, series) in enumerate(by_cell.items()):
        by_metric: dict[str, list[Series]] = {}
        for s in series:
            by_metric.setdefault(s.metric, []).append(s)
        figures = []
        for j, (metric, group) in enumerate(by_metric.items()):
            spec = metric_spec(metric)
            unit = group[0].unit
            chart_id = f"trend-{k}-{j}"
            lines = [{"series": s, "label": label.get(s.machine, s.machine), "color": color.get(s.machine, "#000")}
                     for s in group]
            figures.append({
                "metric": metric, "unit": unit, "better": group[0].better,
                "description": spec.description if spec else "",
                "svg": trend_chart(chart_id=chart_id, title=f"{metric} across commits, {cell}", commits=history.commits,
                                   lines=lines, y_title=f"{metric}{f' ({unit})' if unit else ''}", cell=cell,
                                   metric=metric, unit=unit),
                "lines": [{"machine": s.machine, "label": label.get(s.machine, s.machine),
                           "color": color.get(s.machine, "#000"), "commits": len(s.points), "trend": s.trend_text(),
                           "steps": [f"{short(st.commit)}: {_pct(st.rel_step)} ({st.verdict})" for st in s.steps]}
                          for s in group],
                "changes": sum(len(s.steps) for s in group),
            })
        changes = sum(f["changes"] for f in figures)
        sections.append({"cell": cell, "anchor": anchors[cell], "figures": figures, "changes": changes,
                         "open": open_all or changes > 0})
    if not any(sec["open"] for sec in sections):  # nothing stepped: the first few show what the page holds
        for sec in sections[:OPEN_FIRST]:
            sec["open"] = True
    steps = [{
        "cell": s.cell, "anchor": anchors[s.cell], "metric": s.metric, "machine": s.machine,
        "machine_label": label.get(s.machine, s.machine), "color": color.get(s.machine, "#000"),
        "commit": st.commit, "short": short(st.commit), "rel_step": st.rel_step, "pct": _pct(st.rel_step),
        "interval": f"[{_pct(st.rel_step_interval[0])}, {_pct(st.rel_step_interval[1])}]",
        "before_after": f"{_value(st.mean_before, s.unit)} → {_value(st.mean_after, s.unit)}",
        "p_value": st.p_value, "verdict": st.verdict,
    } for s, st in history.steps()]
    trends = [{
        "cell": s.cell, "anchor": anchors[s.cell], "metric": s.metric, "machine": s.machine,
        "machine_label": label.get(s.machine, s.machine), "color": color.get(s.machine, "#000"),
        "since": short(s.trend_since or ""), "since_full": s.trend_since or "", "rel_slope": s.trend.rel_slope,
        "pct": _pct(s.trend.rel_slope), "interval": f"[{_pct(s.trend.rel_slope_interval[0])}, "
                                                    f"{_pct(s.trend.rel_slope_interval[1])}]",
        "commits": s.trend.stop - s.trend.start, "p_value": s.trend.p_value, "verdict": s.trend_verdict,
    } for s in history.series if s.trend is not None and s.trend.significant]
    return {
        "title": "quantbench history: trends across commits",
        "where": history.where, "runs": history.runs, "n_commits": len(history.commits),
        "machines": [{**m, "color": color[m["id"]]} for m in history.machines],
        "metrics": list(history.metrics), "sections": sections, "steps": steps, "trends": trends,
        "command": command, "back_link": back_link,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "data": {
            "commits": list(history.commits),
            "machines": list(history.machines),
            "series": [{"cell": s.cell, "metric": s.metric, "machine": s.machine, "unit": s.unit, "better": s.better,
                        "commits": s.commits, "values": [p.value for p in s.points],
                        "intervals": [[p.low, p.high] if p.low is not None else None for p in s.points],
                        "runs": [len(p.runs) for p in s.points],
                        "change_points": [{"commit": st.commit, "step": st.step, "rel_step": st.rel_step,
                                           "rel_step_ci95": list(st.rel_step_interval), "p_value": st.p_value,
                                           "verdict": st.verdict} for st in s.steps],
                        "trend": None if s.trend is None else {
                            "since": s.trend_since, "slope": s.trend.slope, "rel_slope": s.trend.rel_slope,
                            "rel_slope_ci95": list(s.trend.rel_slope_interval), "p_value": s.trend.p_value,
                            "significant": s.trend.significant, "verdict": s.trend_verdict}}
                       for s in history.series],
        },
    }


def render(history: History, *, command: str | None = None, back_link: str | None = None) -> str:
    return environment().get_template("trend.html.j2").render(**context(history, command=command,
                                                                        back_link=back_link))


def write_page(history: History, out_dir: str | Path, *, command: str | None = None,
               back_link: str | None = None) -> Path:
    """Write ``out_dir/index.html`` for ``history``; its path."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuantbenchError(f"{out}: cannot create the trend page's folder ({exc.strerror or exc})") from None
    page = out / "index.html"
    page.write_text(render(history, command=command, back_link=back_link), encoding="utf-8")
    return page


def write_trend_page(store: Any, out_dir: str | Path, *, metrics: Sequence[str] | None = None,
                     cells: Sequence[str] | None = None, machines: Sequence[str] | None = None,
                     command: str | None = None, back_link: str | None = None) -> Path:
    """Write ``out_dir/index.html`` from ``store`` (an open store, or a path or URL to open); its path."""
    if isinstance(store, (str, Path)):
        from quantbench.history import open_store

        with open_store(store) as opened:
            history = build(opened, metrics=metrics, cells=cells, machines=machines)
    else:
        history = build(store, metrics=metrics, cells=cells, machines=machines)
    return write_page(history, out_dir, command=command, back_link=back_link)
