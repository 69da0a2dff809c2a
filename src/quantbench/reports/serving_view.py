"""Serving under load in the report: the capacity table and a latency-versus-load chart per variant.

Reads ``test_serving`` records (results.py) only. The chart puts LoadGen's latency at the SLO's
percentile (p99, or TTFT and TPOT for generation, one panel each) against the offered rate of every
server point, one line per batcher setting, with the SLO as a dashed line; a filled point met the
percentile (its share of queries over the bound within the allowance), a hollow one missed it (LoadGen's
stricter VALID is in the tooltip), the ringed one the highest that met it. A point far past the SLO is drawn at the top edge
(its value in its tooltip), so the part of the curve that decides stays readable.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

from quantbench.reports import charts
from quantbench.reports.charts import WIDTH, fmt, nice_ticks, tick

NOT_A_SUBMISSION = ("Shortened MLPerf LoadGen runs (seconds per point, not the 600 s of a submission run): not an "
                    "MLPerf result.")
#: Points above this multiple of the SLO are drawn at the top edge.
Y_CLIP = 3.0
PANEL_H = 170
PANEL_GAP = 36
#: SLO figure -> (its block in a point record, its name on an axis, its name in an SLO: "p99", "TTFT p90").
FIGURES = {"latency": ("latency_ms", "latency", "{p}"), "ttft": ("ttft_ms", "TTFT", "TTFT {p}"),
           "tpot": ("tpot_ms", "TPOT", "TPOT {p}")}


def _server_record(summary):
    return next((r for r in summary.serving if r.params.get("scenario") == "server"), None)


def _scenario_record(summary, scenario: str):
    return next((r for r in summary.serving if r.params.get("scenario") == scenario), None)


def _setting_label(block: dict[str, Any], setting: Any) -> str:
    return f"--parallel {setting}" if block.get("setting") == "parallel" else f"max batch {setting}"


def capacity_rows(analysis) -> list[dict[str, Any]]:
    """One row per variant with serving cells: capacity at the SLO and the figures around it."""
    return [serving_row(summary) for summary in analysis.variants if summary.serving]


def serving_row(summary) -> dict[str, Any]:
    """A variant's serving figures as display text (the report's table, the model card)."""
    server, offline, single = (_scenario_record(summary, s) for s in ("server", "offline", "single_stream"))
    block = ((server or offline or single).extra_info.get("serving") or {})
    row = {"variant": summary.variant.label, "quant": summary.variant.quant, "backend": summary.variant.backend,
           "slo": block.get("slo", "—"), "capacity": "—", "setting": "—", "per_setting": "—", "goodput": "—",
           "offline": "—", "single_stream": "—", "note": "", "tokens": "—",
           "sort_capacity": ""}
    if server is not None:
        e = server.extra_info
        settings = e["serving"].get("settings") or []
        row["per_setting"] = ", ".join(
            f"{_setting_label(e['serving'], s['setting'])}: {fmt(s.get('capacity_qps')) if s.get('capacity_qps') else 'none'}"
            for s in settings)
        if e.get("capacity_qps"):
            interval = e.get("capacity_qps_ci95")
            row.update(capacity=fmt(e["capacity_qps"]) + (f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else ""),
                       sort_capacity=e["capacity_qps"],
                       setting=_setting_label(e["serving"], e.get("capacity_setting")),
                       goodput=fmt(e.get("capacity_goodput_qps")))
            if e.get("slo_binding") is False:  # the search's ceiling, not the SLO: said where the figure is shown
                row["capacity"] += " (SLO not binding)"
                row["note"] = e.get("capacity_bound_by", "")
        else:
            row["note"] = e.get("capacity_message", "")
        tokens = e["serving"].get("served_tokens")
        if tokens:
            row["tokens"] = (f"{tokens['differ']} of {tokens['prompts']} differ "
                             f"({_setting_label(e['serving'], tokens.get('setting'))})")
    if offline is not None and offline.extra_info.get("offline_qps"):
        e = offline.extra_info
        row["offline"] = f"{fmt(e['offline_qps'])} ({_setting_label(e['serving'], e.get('offline_setting'))})"
    if single is not None and single.extra_info.get("single_stream_p90_ms"):
        e = single.extra_info
        text = f"{fmt(e['single_stream_p90_ms'])} ms"
        if e.get("single_stream_ttft_p90_ms"):
            text += f" (TTFT {fmt(e['single_stream_ttft_p90_ms'])}, TPOT {fmt(e.get('single_stream_tpot_p90_ms'))})"
        row["single_stream"] = text
    return row


def serving_charts(analysis, add, kind_color: dict) -> None:
    """A latency-versus-load chart per variant with a server cell."""
    for i, summary in enumerate(s for s in analysis.variants if _server_record(s) is not None):
        record = _server_record(summary)
        block = record.extra_info.get("serving") or {}
        chart_id = f"load-{i}"
        title = f"Latency vs offered load — {summary.variant.label}"
        svg = load_chart(chart_id=chart_id, title=title, block=block,
                         color=kind_color.get((summary.variant.quant, summary.variant.backend)))
        add(chart_id, title, f"LoadGen Server points at the SLO ({block.get('slo', '—')}), one line per setting; filled: "
            "met the percentile, hollow: missed it, ringed: the highest that met it. " + NOT_A_SUBMISSION, svg,
            "" if svg else "No server points in this cell.")


def _series(block: dict[str, Any], figure: str, percentile_key: str) -> list[tuple[str, list[tuple]]]:
    field = FIGURES[figure][0]
    out = []
    for setting in block.get("settings") or []:
        pts = []
        for p in setting.get("points") or []:
            value = (p.get(field) or {}).get(percentile_key)
            if value is not None and p.get("target_qps"):
                met = p.get("meets_slo", p.get("verdict") == "VALID")  # records before meets_slo: LoadGen's verdict
                pts.append((float(p["target_qps"]), float(value), met, p.get("verdict") == "VALID"))
        met_rates = [x for x, _, met, _ in pts if met]
        pts = [(x, y, met, valid, bool(met_rates) and x == max(met_rates)) for x, y, met, valid in pts]
        if pts:
            out.append((_setting_label(block, setting["setting"]), sorted(pts)))
    return out


def load_chart(*, chart_id: str, title: str, block: dict[str, Any], color: str | None = None) -> Markup | None:
    """One panel per SLO figure (latency; or TTFT and TPOT), shared x: offered QPS."""
    limits = block.get("slo_ms") or {}
    key = f"p{float(block.get('percentile') or 0.99) * 100:g}"
    panels = [(name, limit, _series(block, name, key)) for name, limit in limits.items()]
    panels = [p for p in panels if p[2]]
    if not panels:
        return None
    left, right, top = 64, WIDTH - 20, 16
    xs = [x for _, _, series in panels for _, pts in series for x, *_ in pts]
    xt = nice_ticks(0, max(xs) * 1.05)
    x_of = lambda v: left + (v - xt[0]) / (xt[-1] - xt[0]) * (right - left)  # noqa: E731
    parts: list[str] = []
    names = sorted({name for _, _, series in panels for name, _ in series})
    colors = {name: charts.color(i) for i, name in enumerate(names)}
    if color and len(names) == 1:
        colors[names[0]] = color
    y0 = top
    for figure, limit, series in panels:
        cap = limit * Y_CLIP
        ys = [min(y, cap) for _, pts in series for _, y, *_ in pts] + [limit]
        yt = nice_ticks(0, max(ys) * 1.08)
        y_of = lambda v, yt=yt, y0=y0: y0 + PANEL_H - (min(v, yt[-1]) - yt[0]) / (yt[-1] - yt[0]) * PANEL_H  # noqa: E731
        label = f"{FIGURES[figure][1]} {key} (ms)"
        parts += charts._y_axis(yt, y_of, left, right, label)
        parts.append(f'<line class="slo" x1="{left}" x2="{right}" y1="{y_of(limit):.1f}" y2="{y_of(limit):.1f}" '
                     f'stroke="#D55E00" stroke-dasharray="6 4" stroke-width="1.5"/>'
                     f'<text x="{right - 4}" y="{y_of(limit) - 5:.1f}" text-anchor="end" class="tick">'
                     f'SLO {escape(FIGURES[figure][2].format(p=key))} ≤ {tick(limit)} ms</text>')
        for name, pts in series:
            c = colors[name]
            path = " ".join(f"{x_of(x):.1f},{y_of(min(y, yt[-1])):.1f}" for x, y, *_ in pts)
            if len(pts) > 1:
                parts.append(f'<polyline class="mark line" points="{path}" fill="none" stroke="{c}" stroke-width="1.5"/>')
            for x, y, met, valid, is_capacity in pts:
                fill = c if met else "white"
                clipped = y > yt[-1]
                parts.append(f'<circle class="mark" cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="{4.5 if clipped else 4}" '
                             f'fill="{fill}" stroke="{c}" stroke-width="1.5"><title>{escape(name)}: {fmt(x)} QPS offered, '
                             f'{escape(FIGURES[figure][1])} {key} {fmt(y)} ms, {"met" if met else "missed"} the percentile, LoadGen {"VALID" if valid else "INVALID"}'
                             f'{" (above the chart)" if clipped else ""}</title></circle>')
                if is_capacity:
                    parts.append(f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="8" fill="none" stroke="{c}" '
                                 'stroke-width="1"/>')
        y0 += PANEL_H + PANEL_GAP
    bottom = y0 - PANEL_GAP
    for t in xt:
        parts.append(f'<text x="{x_of(t):.1f}" y="{bottom + 16}" text-anchor="middle" class="tick">{tick(t)}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{bottom + 34}" text-anchor="middle" class="axis-title">'
                 'offered load (LoadGen server_target_qps, queries/s)</text>')
    legend, lh = charts._legend(names, x=left, y=bottom + 56, colors=[colors[n] for n in names])
    return charts._svg(chart_id, title, bottom + 56 + lh, parts + legend)
