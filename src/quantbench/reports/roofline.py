"""The roofline chart: this machine's compute roofs and bandwidth roof, every cell placed on them.

Log-log axes: x is arithmetic intensity (FLOPs per byte of weights read), y achieved GFLOP/s.
Each compute peak is a flat roof; the bandwidth roof is the line y = bandwidth x intensity. A
cell under the slanted part is bound by memory, under a flat part by compute. Generation cells
appear twice: their prefill (compute-heavy) and their decode step (bandwidth-bound).
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

from quantbench.reports.charts import WIDTH, _legend, _svg, fmt

#: Greys for the roofs, darkest for the first in order (fp32 first): every kernel family gets one.
ROOF_GREYS = ("#555555", "#777777", "#888888", "#999999", "#aaaaaa", "#bbbbbb")


def roof_color(name: str, names: list[str]) -> str:
    order = sorted(names, key=lambda n: (n != "matmul_fp32", n))
    return ROOF_GREYS[order.index(name) % len(ROOF_GREYS)] if name in order else ROOF_GREYS[0]


def drawn_roofs(limits: dict[str, Any]) -> dict[str, float]:
    """The compute roofs worth drawing: measured, and native on this CPU (an emulated kernel's slow
    reference path is no roof a cell can be placed under)."""
    return {name: e["peak"] for name, e in (limits.get("limits") or {}).items()
            if name.startswith("matmul_") and e.get("peak") and not e.get("emulated")}


def roofline_points(rows) -> list[tuple[str, str, float, float]]:
    """(label, method, intensity, GFLOP/s) for every row with efficiency figures."""
    points = []
    for row in rows:
        m, v = row.metrics, row.variant
        name = f"{v.quant} · {v.backend}"
        where = f"bs{row.batch_size}"
        if m.get("arithmetic_intensity") and m.get("achieved_gflops") and row.test == "test_latency":
            points.append((f"{name} {where}", name, m["arithmetic_intensity"], m["achieved_gflops"]))
        if m.get("arithmetic_intensity") and m.get("prefill_gflops"):
            points.append((f"{name} {where} prefill", name, m["arithmetic_intensity"], m["prefill_gflops"]))
        if m.get("decode_arithmetic_intensity") and m.get("decode_gflops"):
            points.append((f"{name} {where} decode", name, m["decode_arithmetic_intensity"], m["decode_gflops"]))
    return points


def roofline_chart(*, chart_id: str, limits: dict[str, Any], rows, colors: dict[str, str]) -> Markup | None:
    entries = limits.get("limits") or {}
    roofs = drawn_roofs(limits)
    bandwidth = max([e["peak"] for name, e in entries.items() if name.startswith("bandwidth_")] or [0])
    points = roofline_points(rows)
    if not roofs or not bandwidth or not points:
        return None
    left, right, top, plot_h = 70, WIDTH - 170, 16, 300
    xs = [p[2] for p in points] + [min(roofs.values()) / bandwidth]
    ys = [p[3] for p in points] + list(roofs.values())
    x_lo, x_hi = 10 ** math.floor(math.log10(min(xs) / 2)), 10 ** math.ceil(math.log10(max(xs) * 2))
    y_lo, y_hi = 10 ** math.floor(math.log10(min(ys) / 2)), 10 ** math.ceil(math.log10(max(ys) * 1.5))
    x_of = lambda v: left + (math.log10(v) - math.log10(x_lo)) / (math.log10(x_hi) - math.log10(x_lo)) * (right - left)  # noqa: E731
    y_of = lambda v: top + plot_h - (math.log10(v) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo)) * plot_h  # noqa: E731
    parts: list[str] = []
    decade = x_lo
    while decade <= x_hi:
        parts.append(f'<line x1="{x_of(decade):.1f}" x2="{x_of(decade):.1f}" y1="{top}" y2="{top + plot_h}" '
                     f'class="grid"/><text x="{x_of(decade):.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'class="tick">{decade:g}</text>')
        decade *= 10
    decade = y_lo
    while decade <= y_hi:
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y_of(decade):.1f}" y2="{y_of(decade):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y_of(decade) + 4:.1f}" text-anchor="end" class="tick">{decade:g}</text>')
        decade *= 10
    parts.append(f'<text x="{(left + right) / 2}" y="{top + plot_h + 34}" text-anchor="middle" class="axis-title">'
                 f'arithmetic intensity (FLOP per byte of weights, log)</text>'
                 f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" '
                 f'text-anchor="middle" class="axis-title">achieved GFLOP/s (log)</text>')
    label_y = -math.inf
    for name, value in sorted(roofs.items(), key=lambda kv: -kv[1]):
        knee = value / bandwidth  # where the bandwidth line meets this roof
        x0 = max(knee, x_lo)
        label_y = max(y_of(value) + 4, label_y + 12)  # close roofs: labels stacked, not overlapping
        parts.append(f'<line class="roof" data-roof="{escape(name)}" x1="{x_of(x0):.1f}" x2="{right}" '
                     f'y1="{y_of(value):.1f}" y2="{y_of(value):.1f}" stroke="{roof_color(name, list(roofs))}" '
                     f'stroke-width="2"><title>{escape(name)}: {fmt(value)} GFLOP/s measured peak</title></line>'
                     f'<text x="{right + 4}" y="{label_y:.1f}" class="tick">{escape(name)} {fmt(value)}</text>')
    top_roof = max(roofs.values())
    x_end = min(top_roof / bandwidth, x_hi)
    parts.append(f'<line class="roof" data-roof="bandwidth" x1="{x_of(x_lo):.1f}" y1="{y_of(max(bandwidth * x_lo, y_lo)):.1f}" '
                 f'x2="{x_of(x_end):.1f}" y2="{y_of(bandwidth * x_end):.1f}" stroke="#000" stroke-width="2" '
                 f'stroke-dasharray="6 3"><title>memory bandwidth {fmt(bandwidth)} GB/s measured</title></line>')
    for label, method, x, y in points:
        parts.append(f'<circle class="mark" cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="5" fill="{colors.get(method, "#0072B2")}" '
                     f'fill-opacity="0.85"><title>{escape(label)}: {fmt(x)} FLOP/B, {fmt(y)} GFLOP/s</title></circle>')
    methods = sorted({p[1] for p in points})
    legend, height = _legend(methods, x=left, y=top + plot_h + 56, colors=[colors.get(m, "#0072B2") for m in methods])
    parts += legend
    return _svg(chart_id, "Roofline: achieved GFLOP/s against arithmetic intensity", top + plot_h + 50 + height, parts)
