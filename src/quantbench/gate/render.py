"""Present a :class:`GateResult`: terminal table, Markdown summary, JSON."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from quantbench.gate import verdicts as R
from quantbench.gate.policy import ABSOLUTE, SAMPLED_KINDS
from quantbench.results import metric_spec

if TYPE_CHECKING:  # the result object calls these; they read its rows
    from quantbench.gate.result import GateResult

COLUMNS = ("cell", "metric", "baseline", "current", "change", "threshold", "mde", "p-value", "verdict")
JSON_SCHEMA_VERSION = 1
_ICONS = {R.FAIL: "❌", R.WARN: "⚠️", R.OK: "✅"}


def _points(metric: str | None) -> bool:
    """Accuracy-like shares are shown in percentage points."""
    return metric is not None and metric_spec(metric).kind == "accuracy" and metric_spec(metric).unit == ""


def fmt_value(value: float | None, metric: str | None) -> str:
    if value is None:
        return "-"
    unit = metric_spec(metric).unit if metric else ""
    if metric and metric_spec(metric).kind in ("accuracy", "fairness") and not unit:
        return f"{value:.4f}"
    magnitude = abs(value)
    text = (f"{value:,.0f}" if magnitude >= 1000 else f"{value:.1f}" if magnitude >= 100
            else f"{value:.2f}" if magnitude >= 1 else f"{value:.4g}")
    return f"{text} {unit}".strip()


def _fmt_rel(change: float) -> str:
    if change > 10:  # past +1000 %: an interval of a few processes, not a figure to read digits off
        return ">+1000%" if math.isfinite(change) else "+inf"
    return f"{change * 100:+.1f}%" if math.isfinite(change) else ("+inf" if change > 0 else "-inf")


def _fmt_abs(change: float, metric: str | None) -> str:
    if _points(metric):
        return f"{change * 100:+.2f} pts"
    return f"{change:+.4g} {metric_spec(metric).unit if metric else ''}".strip()


def fmt_change(row: R.Row) -> str:
    """The change, and the interval of the change where there is one: the rounds' ratio-of-medians
    interval for timing, the 95 % interval of the difference for a quality rule with significance."""
    if row.change is None:
        return "-"
    def fmt(x: float) -> str:
        return _fmt_abs(x, row.metric) if row.mode == ABSOLUTE else _fmt_rel(x)

    text = fmt(row.change)
    if row.ci:
        # The rounds' interval is always of the relative change, whatever the rule's mode.
        ci_fmt = _fmt_rel if row.metric and metric_spec(row.metric).kind in SAMPLED_KINDS else fmt
        text += f" [{ci_fmt(row.ci[0])}, {ci_fmt(row.ci[1])}]"
    if row.drift is not None and row.raw_change is not None:
        text += f" (raw {_fmt_rel(row.raw_change)}, machine x{row.drift:.2f})"
    return text


def fmt_threshold(row: R.Row) -> str:
    """Signed in the worse direction: "+10%" for latency, "-1 pt" for accuracy."""
    if row.threshold is None:
        return "-"
    sign = "+" if row.better == "lower" else "-"
    if row.mode == ABSOLUTE:
        return f"{sign}{row.threshold * 100:g} pt" if _points(row.metric) else f"{sign}{row.threshold:g}"
    return f"{sign}{round(row.threshold * 100, 1):g}%"


def fmt_mde(row: R.Row) -> str:
    """The smallest worsening the cell detects, signed like the threshold ("+34%" for a time)."""
    if row.mde is None:
        return "-"
    if row.mde > 10:  # two processes a side give t intervals this wide: the figure's digits mean nothing
        return f"{'+' if row.better == 'lower' else '-'}>1000%"
    return f"{'+' if row.better == 'lower' else '-'}{round(row.mde * 100, 1):g}%"


def fmt_p(p_value: float | None) -> str:
    if p_value is None:
        return "-"
    return "<0.0001" if p_value < 1e-4 else f"{p_value:.4f}"


def _verdict(row: R.Row) -> str:
    text = row.verdict.upper() if row.outcome == R.FAIL else row.verdict
    return f"{text} ({row.note})" if row.note else text


def table_rows(result: GateResult, *, only_problems: bool = False) -> list[tuple[str, ...]]:
    rows = result.sorted_rows()
    if only_problems:
        rows = [r for r in rows if r.outcome != R.OK or r.verdict == R.IMPROVEMENT]
    return [(r.cell, r.metric or "-", fmt_value(r.baseline, r.metric), fmt_value(r.current, r.metric),
             fmt_change(r), fmt_threshold(r), fmt_mde(r), fmt_p(r.p_value), _verdict(r)) for r in rows]


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(COLUMNS)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def render_table(result: GateResult, *, only_problems: bool = False) -> str:
    """Plain-text table for a terminal or CI log, headline last so it ends the log."""
    parts = [f"baseline: {result.baseline_label}", f"current:  {result.current_label}",
             f"policy:   {result.policy.source} (alpha {result.policy.alpha:g}, "
             f"min_rounds {result.policy.min_rounds})", ""]
    rows = table_rows(result, only_problems=only_problems)
    parts.append(_grid(rows) if rows else "(nothing to compare)")
    parts += [""] + [f"WARNING: {w}" for w in result.warnings] + [result.summary(), result.headline()]
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] * len(COLUMNS)) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    return lines


def to_markdown(result: GateResult) -> str:
    """A summary for ``$GITHUB_STEP_SUMMARY``: headline, warnings, what changed, then all checks."""
    icon = _ICONS[R.OK] if result.passed else _ICONS[R.FAIL]
    lines = [f"## {icon} {result.headline()}", "",
             f"Baseline `{result.baseline_label}`, current `{result.current_label}`, "
             f"policy `{result.policy.source}` (alpha {result.policy.alpha:g}, "
             f"min_rounds {result.policy.min_rounds}).", ""]
    if result.machine_differences:
        severity = "fails the gate (strict)" if result.machine_failed else "figures may not be comparable"
        lines += [f"> {_ICONS[R.WARN]} **Machine differs from the baseline: {severity}.**", ">"]
        lines += [f"> - `{d.field}`: `{d.baseline!r}` → `{d.current!r}`" for d in result.machine_differences]
        lines.append("")
    other = [w for w in result.warnings if not w.startswith("baseline was measured")]
    lines += [f"- {_ICONS[R.WARN]} {_md_cell(w)}" for w in other] + ([""] if other else [])
    lines += [_md_cell(result.summary()), ""]
    notable = table_rows(result, only_problems=True)
    if notable:
        lines += ["### Changes", ""] + _md_table(notable) + [""]
    else:
        lines += ["No regressions, warnings or improvements beyond the thresholds.", ""]
    lines += ["<details><summary>All checks</summary>", ""] + _md_table(table_rows(result))
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """JSON has no inf/NaN: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def to_dict(result: GateResult) -> dict[str, Any]:
    return _finite({
        "schema_version": JSON_SCHEMA_VERSION,
        "passed": result.passed, "exit_code": result.exit_code, "headline": result.headline(),
        "baseline": result.baseline_label, "current": result.current_label,
        "counts": dict(result.counts()), "warnings": list(result.warnings),
        "machine_differences": [{"field": d.field, "baseline": d.baseline, "current": d.current}
                                for d in result.machine_differences],
        "machine_failed": result.machine_failed,
        "machine_drift": result.machine_drift, "between_run_noise": dict(result.between_run_noise),
        "past_threshold": [{"cell": r.cell, "metric": r.metric, "verdict": r.verdict, "change": r.change, "mde": r.mde}
                           for r in result.past_threshold()],
        "policy": result.policy.describe(),
        "rows": [row.to_dict() for row in result.rows],
    })


def to_json(result: GateResult) -> str:
    return json.dumps(to_dict(result), indent=2, default=str) + "\n"
