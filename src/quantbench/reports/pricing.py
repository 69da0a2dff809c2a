"""Cost across machines: each run priced at its own machine's hourly price.

``quantbench compare a.json@1.0 b.json@3.0`` (or a YAML file mapping run paths to prices) gives
every cell a cost per million inferences (classification) or per million output tokens
(generation) on each machine, and names the cheapest variant per model that meets its quality
rule: 99 % of fp32 accuracy for a classifier, the run's quality budget for a generation model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quantbench.efficiency.cost import cost_figures, parse_price
from quantbench.errors import QuantbenchError
from quantbench.results import Run


def split_priced(arg: str) -> tuple[str, float | None]:
    """``run.json@2.50`` -> ("run.json", 2.5); a plain path has no price."""
    path, sep, price = arg.rpartition("@")
    if not sep or not path:
        return arg, None
    return path, parse_price(price, where=f"{arg}: the part after '@'")


def read_prices(path: str) -> dict[str, float]:
    """A YAML mapping of run file -> USD per hour."""
    from quantbench.yaml_text import parse_yaml

    text = Path(path).read_text(encoding="utf-8")
    data = parse_yaml(text, where=path, error=QuantbenchError)
    if not isinstance(data, dict):
        raise QuantbenchError(f"{path}: must map run files to prices in USD per hour")
    return {str(k): parse_price(v, where=f"{path}: {k}") for k, v in data.items()}


def _quality_ok(run: Run, record_params: dict[str, Any]) -> tuple[bool, str]:
    """The variant's quality rule, as the recommendation reads it (reports/rules.py)."""
    from quantbench.reports import rules
    from quantbench.reports.model import analyse

    analysis = analyse(run)
    summary = next((s for s in analysis.variants if (s.variant.model, s.variant.quant, s.variant.backend,
                                                     s.variant.device) == tuple(record_params[k] for k in
                                                                               ("model", "quant", "backend", "device"))), None)
    if summary is None:
        return False, "no quality figures"
    if summary.is_generation:
        check = rules.check_budget(summary, analysis.quality_budget)
    else:
        check = rules.check_accuracy(summary, next((s for s in analysis.variants if s.variant == summary.reference),
                                                   None))
    return check.ok, check.why


def cost_table(runs: list[Run], labels: list[str], prices: list[float | None]) -> dict[str, Any]:
    """Per cell and machine: cost per million; per model: the cheapest variant within its quality rule."""
    rows, candidates = [], {}
    for run, label, price in zip(runs, labels, prices):
        if price is None:
            continue
        for record in run.records:
            if record.test not in ("test_latency", "test_generation"):
                continue
            figures = cost_figures(record.extra_info, price)
            unit = "output tokens" if "cost_per_million_output_tokens" in figures else "inferences"
            cost = figures.get("cost_per_million_output_tokens", figures.get("cost_per_million_inferences"))
            if cost is None:
                continue
            ok, why = _quality_ok(run, record.params)
            row = {"machine": label, "price_per_hour": price, "cell": record.cell_id, "test": record.test,
                   "model": record.params.get("model"), "unit": unit, "cost_per_million": cost,
                   "meets_quality": ok, "why_not": why,
                   "compute_share": record.extra_info.get("compute_share"),
                   "bandwidth_share": record.extra_info.get("bandwidth_share")}
            rows.append(row)
            if ok:
                best = candidates.get(row["model"])
                if best is None or cost < best["cost_per_million"]:
                    candidates[row["model"]] = row
    return {"rows": rows, "cheapest": candidates}


def render_cost_table(table: dict[str, Any]) -> list[str]:
    if not table["rows"]:
        return []
    lines = [f"{'machine':<28} {'cell':<58} {'USD/hour':>8} {'USD per million':>16} {'share':>6}  quality"]
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for row in table["rows"]:
        by_cell.setdefault(row["cell"], []).append(row)
    for cell, rows in sorted(by_cell.items()):
        for row in sorted(rows, key=lambda r: r["machine"]):
            share = row["compute_share"]
            lines.append(f"{row['machine'][:28]:<28} {cell[:58]:<58} {row['price_per_hour']:>8.2f} "
                         f"{row['cost_per_million']:>10.4f} {row['unit'][:5]:<5} "
                         f"{'—' if share is None else format(share, '.2f'):>6}  "
                         f"{'ok' if row['meets_quality'] else 'no: ' + row['why_not']}")
        if len(rows) > 1:
            cheaper = min(rows, key=lambda r: r["cost_per_million"])
            lines.append(f"{'':<28} {'':<58} cheaper: {cheaper['machine']}")
    for model, row in sorted(table["cheapest"].items()):
        lines.append(f"cheapest for {model} within its quality rule: {row['cell']} on {row['machine']} at "
                     f"{row['cost_per_million']:.4f} USD per million {row['unit']}")
    return lines
