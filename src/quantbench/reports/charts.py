"""Charts as inline SVG strings, drawn in Python so the report needs no script library.

Every text that comes from a run (model names, groups...) goes through :func:`escape`.
Each chart is ``<svg class="chart" data-chart=...>`` and every data mark carries
``class="mark"``, which the page's self-check and the browser test count.
"""

from __future__ import annotations

import math
from typing import Iterable

from markupsafe import Markup, escape

WIDTH = 720
#: Okabe-Ito: distinguishable for the common colour-vision deficiencies.
#: (Its yellow is swapped for grey: too faint on white.)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#7F7F7F", "#000000")
LABEL_CHARS = 46


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def fmt(value: float | None) -> str:
    """Compact number for axes and bar ends; missing is an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    if a >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def tick(value: float) -> str:
    """Axis tick: no trailing zeros (50, 0.05, 2.5)."""
    return f"{value:,.6g}" if abs(value) >= 1000 else f"{value:.6g}"


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round ticks from at or below ``lo`` to at or above ``hi``."""
    if not hi - lo > 1e-9 * max(abs(lo), abs(hi)):
        # Equal, or apart by float rounding only (one stored value read back twice): a step that small
        # would never advance a tick past ``hi``.
        hi = lo + (abs(lo) * 0.1 or 1.0)
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)  # the last tick covers the largest value
    return [float(f"{k * step:.12g}") for k in range(first, max(last, first + 1) + 1)]


def _svg(chart_id: str, title: str, height: int, body: Iterable[str]) -> Markup:
    head = (f'<svg class="chart" data-chart="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}">'
            f'<title>{escape(title)}</title>')
    return Markup(head + "".join(body) + "</svg>")


def _legend(names: list[str], *, x: int, y: int, colors: list[str] | None = None) -> tuple[list[str], int]:
    """Legend in rows under the plot; returns the parts and the height used."""
    colors = colors or [color(i) for i in range(len(names))]
    parts, cx, cy = [], x, y
    for i, name in enumerate(names):
        text = _short(name)
        w = 22 + 7 * len(text)
        if cx + w > WIDTH - 10 and cx > x:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{cx}" y="{cy - 9}" width="12" height="12" fill="{colors[i]}"/>'
                     f'<text x="{cx + 16}" y="{cy + 1}" class="legend">{escape(text)}</text>')
        cx += w
    return parts, (cy - y) + 22 if names else 0


def _y_axis(ticks: list[float], y_of, left: int, right: int, title: str) -> list[str]:
    parts = []
    for t in ticks:
        y = y_of(t)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{tick(t)}</text>')
    parts.append(f'<text x="14" y="{(y_of(ticks[0]) + y_of(ticks[-1])) / 2:.1f}" class="axis-title" '
                 f'transform="rotate(-90 14 {(y_of(ticks[0]) + y_of(ticks[-1])) / 2:.1f})" '
                 f'text-anchor="middle">{escape(title)}</text>')
    return parts


def line_chart(*, chart_id: str, title: str, categories: list, series: list[tuple[str, dict]],
               x_title: str, y_title: str, colors: list[str] | None = None) -> Markup:
    """One line per series over categorical x (batch sizes), equally spaced."""
    colors = colors or [color(i) for i in range(len(series))]
    left, right, top, plot_h = 64, WIDTH - 20, 16, 240
    values = [v for _, pts in series for v in pts.values() if v is not None]
    ticks = nice_ticks(0, max(values) if values else 1)
    y_of = lambda v: top + plot_h - (v - ticks[0]) / (ticks[-1] - ticks[0]) * plot_h  # noqa: E731
    step = (right - left) / max(len(categories), 1)
    x_of = {c: left + step * (i + 0.5) for i, c in enumerate(categories)}
    parts = _y_axis(ticks, y_of, left, right, y_title)
    for c in categories:
        parts.append(f'<text x="{x_of[c]:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
                     f'{escape(c)}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{top + plot_h + 34}" text-anchor="middle" '
                 f'class="axis-title">{escape(x_title)}</text>')
    for i, (name, pts) in enumerate(series):
        xy = [(x_of[c], y_of(pts[c]), c, pts[c]) for c in categories if pts.get(c) is not None]
        if len(xy) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in xy)
            parts.append(f'<polyline class="mark line" points="{path}" fill="none" stroke="{colors[i]}" '
                         f'stroke-width="2"/>')
        for x, y, c, v in xy:
            parts.append(f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colors[i]}">'
                         f'<title>{escape(name)} at {escape(c)}: {fmt(v)}</title></circle>')
    legend, lh = _legend([name for name, _ in series], x=left, y=top + plot_h + 56, colors=colors)
    return _svg(chart_id, title, top + plot_h + 56 + lh, parts + legend)


def bar_chart(*, chart_id: str, title: str, bars: list[tuple[str, float | None]], unit: str,
              colors: list[str] | None = None) -> Markup:
    """Horizontal bars, one per label; missing values show an em dash instead of a bar."""
    label_w, right, top, bar_h, gap = 330, WIDTH - 110, 8, 16, 6
    vmax = max([v for _, v in bars if v is not None] or [1]) or 1
    parts = []
    for i, (label, value) in enumerate(bars):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h - 4}" text-anchor="end" class="label">'
                     f'<title>{escape(label)}</title>{escape(_short(label))}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + bar_h - 4}" class="tick">—</text>')
            continue
        w = max(abs(value) / vmax * (right - label_w), 1)
        fill = colors[i] if colors else PALETTE[0]
        parts.append(f'<rect class="mark" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{fill}">'
                     f'<title>{escape(label)}: {fmt(value)} {escape(unit)}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" class="tick">'
                     f'{fmt(value)} {escape(unit)}</text>')
    return _svg(chart_id, title, top * 2 + len(bars) * (bar_h + gap), parts)


def grouped_bar_chart(*, chart_id: str, title: str, categories: list[str], groups: list[str],
                      values: dict[tuple[str, str], float], unit: str) -> Markup:
    """Horizontal clusters: one cluster per category (variant), one bar per group."""
    label_w, right, top, bar_h = 330, WIDTH - 60, 8, 12
    vmax = max(list(values.values()) or [1]) or 1
    parts, y = [], top
    for cat in categories:
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h * len(groups) / 2 + 4:.1f}" text-anchor="end" '
                     f'class="label"><title>{escape(cat)}</title>{escape(_short(cat))}</text>')
        for gi, group in enumerate(groups):
            v = values.get((cat, group))
            if v is not None:
                w = max(v / vmax * (right - label_w), 1)
                parts.append(f'<rect class="mark" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" '
                             f'fill="{color(gi)}"><title>{escape(cat)} · {escape(group)}: {fmt(v)}</title></rect>'
                             f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 2}" class="tick small">{fmt(v)}</text>')
            y += bar_h
        y += 8
    legend, lh = _legend(groups, x=label_w, y=y + 14)
    return _svg(chart_id, title, y + 14 + lh, parts + legend)


def scatter_chart(*, chart_id: str, title: str, points: list[tuple[str, float, float, bool]],
                  x_title: str, y_title: str) -> Markup:
    """Points (label, x, y, on_front); the front is joined by a dashed line and labelled."""
    left, right, top, plot_h = 64, WIDTH - 150, 16, 260
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    xt = nice_ticks(min(xs + [1.0]) * 0.9, max(xs + [1.0]) * 1.05)
    yt = nice_ticks(min(ys + [0.0]) - 0.1, max(ys + [0.0]) + 0.1)
    x_of = lambda v: left + (v - xt[0]) / (xt[-1] - xt[0]) * (right - left)  # noqa: E731
    y_of = lambda v: top + plot_h - (v - yt[0]) / (yt[-1] - yt[0]) * plot_h  # noqa: E731
    parts = _y_axis(yt, y_of, left, right, y_title)
    for t in xt:
        parts.append(f'<line x1="{x_of(t):.1f}" x2="{x_of(t):.1f}" y1="{top}" y2="{top + plot_h}" class="grid"/>'
                     f'<text x="{x_of(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="tick">'
                     f'{tick(t)}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{top + plot_h + 34}" text-anchor="middle" '
                 f'class="axis-title">{escape(x_title)}</text>')
    front = sorted((p for p in points if p[3]), key=lambda p: p[1])
    if len(front) > 1:
        path = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for _, x, y, _ in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#D55E00" '
                     f'stroke-dasharray="5 4" stroke-width="1.5"/>')
    for label, x, y, on_front in points:
        fill = "#D55E00" if on_front else "#0072B2"
        parts.append(f'<circle class="mark{" on-front" if on_front else ""}" cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" '
                     f'r="{6 if on_front else 4}" fill="{fill}" fill-opacity="0.85"><title>{escape(label)}: '
                     f'{fmt(x)}x, {fmt(y)} pts{" (Pareto front)" if on_front else ""}</title></circle>')
    # Front points get a label; labels never overlap one another (place_labels).
    front_px = [(x_of(x), y_of(y), label) for label, x, y, on_front in points if on_front]
    legend_box = (right + 10, top, WIDTH, top + 40)
    for lx, ly, anchor, text, (px, py) in place_labels(front_px, left=left, right=WIDTH - 4, top=top,
                                                        bottom=top + plot_h, obstacles=[legend_box],
                                                        marks=[(x_of(x), y_of(y)) for _, x, y, _ in points]):
        if abs(ly - 4 - py) > 16:  # moved away from its point: a thin leader line says whose it is
            parts.append(f'<line class="leader" x1="{px:.1f}" y1="{py:.1f}" x2="{lx:.1f}" y2="{ly - 4:.1f}" '
                         'stroke="#999" stroke-width="0.75"/>')
        parts.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="tick point-label">'
                     f'{escape(text)}</text>')
    parts.append(f'<circle cx="{right + 20}" cy="{top + 10}" r="6" fill="#D55E00"/>'
                 f'<text x="{right + 30}" y="{top + 14}" class="legend">Pareto front</text>'
                 f'<circle cx="{right + 20}" cy="{top + 30}" r="4" fill="#0072B2"/>'
                 f'<text x="{right + 30}" y="{top + 34}" class="legend">dominated</text>')
    return _svg(chart_id, title, top + plot_h + 44, parts)


#: Width of one character of a chart label (the page's 11 px tick font), for collision checks.
CHAR_W = 6.6
LABEL_H = 13


def label_box(x: float, y: float, anchor: str, text: str) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a text drawn at baseline ``y`` with ``text-anchor`` ``anchor``."""
    w = CHAR_W * len(text)
    x0 = x - w if anchor == "end" else x
    return x0, y - LABEL_H + 3, x0 + w, y + 3


def _overlaps(a: tuple, b: tuple) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(points: list[tuple[float, float, str]], *, left: float, right: float, top: float, bottom: float,
                 marks: list[tuple[float, float]] = (), obstacles: list[tuple] = ()
                 ) -> list[tuple[float, float, str, str, tuple[float, float]]]:
    """Labels for points (pixel x, y, text) that overlap neither each other nor any mark.

    Points within 4 px of each other share one label (their names joined). Each label tries spots
    beside its point, then further above and below; one with no free spot inside the plot is left
    out (its point's tooltip still names it). Returns (x, y, anchor, text, (point x, point y)).
    """
    groups: list[list] = []
    for x, y, text in sorted(points, key=lambda p: (p[0], p[1])):
        home = next((g for g in groups if abs(g[0] - x) <= 4 and abs(g[1] - y) <= 4), None)
        if home:
            home[2].append(text)
        else:
            groups.append([x, y, [text]])
    mark_boxes = [(mx - 6, my - 6, mx + 6, my + 6) for mx, my in marks] + list(obstacles)
    placed: list[tuple] = []
    out = []
    for x, y, texts in groups:
        text = _short(", ".join(dict.fromkeys(texts)))
        sides = [("start", 9), ("end", -9)] if x < (left + right) / 2 else [("end", -9), ("start", 9)]
        for dy in (-8, 16, -22, 30, -36, 44, -50, 58, -64, 72):
            spot = next(((x + dx, y + dy, anchor) for anchor, dx in sides
                         if (box := label_box(x + dx, y + dy, anchor, text))[0] >= left
                         and box[2] <= right and box[1] >= top - 12 and box[3] <= bottom + 4
                         and not any(_overlaps(box, other) for other in placed + mark_boxes)), None)
            if spot:
                placed.append(label_box(*spot, text))
                out.append((spot[0], spot[1], spot[2], text, (x, y)))
                break
    return out
