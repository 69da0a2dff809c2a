"""How repeatable is a serving capacity? Runs of `make serve` of one commit, side by side.

    python scripts/serving_repeatability.py serving-1.json serving-2.json serving-3.json

For each server cell and batcher setting it prints every run's capacity with its 95 % interval,
refitted from the run's own recorded points by this checkout's analysis (serving/search.py: the
bracket, the knee's fit, which figure binds), so runs recorded before a fix to the analysis compare
with runs after it; the measurements themselves are the runs'.
whether all the intervals overlap (they should: one commit, one machine), and the spread between runs:
the largest change between two runs and the sd of the log capacities. The gate's `capacity_qps`
threshold is set from that spread (docs/serving.md, "How repeatable").
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace


def refit(setting: dict, serving: dict) -> dict | None:
    """{capacity, ci, method} of one setting's recorded search, analysed by this checkout's code."""
    from quantbench.serving.search import SearchResult, fit_knee, meets

    bounds, percentile = serving["slo_ms"], serving["percentile"]
    points = [SimpleNamespace(target_qps=p["target_qps"], overlatency_queries=p.get("overlatency_queries"),
                              query_count=p.get("query_count"), client=p.get("client") or {},
                              replicate=p.get("replicate", 0))
              for p in setting.get("points", [])]
    for point in points:
        point.met = meets(point, bounds, percentile)
    knee = serving["search"]["knee_points"] * serving["search"].get("replicates", 1)
    missed_any = any(not p.met for p in points)
    bisection = points[:-knee] if missed_any and knee else points
    met = [p for p in bisection if p.met]
    if not met:
        return None
    capacity = max(met, key=lambda p: p.target_qps)
    result = SearchResult(upper_qps=setting.get("upper_qps") or 0.0, points=points, capacity=capacity,
                          failed=missed_any, allowed_share=round(1 - percentile, 6),
                          precision=serving["search"].get("precision", 0.0))
    if missed_any:
        above = [p.target_qps for p in bisection if not p.met and p.target_qps > capacity.target_qps]
        hi = min(above) if above else min(p.target_qps for p in points if not p.met)
        result.fits, result.fit_window_qps = fit_knee(points, capacity.target_qps, hi, bounds, percentile)
    return {"capacity": result.capacity_qps, "ci": (list(result.capacity_interval) if result.capacity_interval
                                                    else None), "method": result.method()}


def server_cells(path: Path) -> dict[tuple[str, str], dict]:
    """{(cell, setting): {capacity, ci}} of one run; setting "best" is the cell's highest capacity."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        if extra.get("scenario") != "server":
            continue
        cell, serving = bench["name"], extra["serving"]
        found = {str(s["setting"]): refit(s, serving) for s in serving.get("settings", []) if s.get("points")}
        found = {name: f for name, f in found.items() if f and f["capacity"]}
        for name, figure in found.items():
            out[(cell, name)] = {**figure, "task": extra.get("task")}
        if found:
            name, figure = max(found.items(), key=lambda item: item[1]["capacity"])
            out[(cell, "best")] = {**figure, "setting": name, "task": extra.get("task")}
    return out


def overlap(intervals: list[list[float] | None]) -> bool | None:
    """Do all the intervals share a point? None when one is missing."""
    if any(i is None for i in intervals):
        return None
    return max(i[0] for i in intervals) <= min(i[1] for i in intervals)


def summary(runs: list[dict]) -> list[dict]:
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    rows = []
    for key in keys:
        values = [r[key]["capacity"] for r in runs]
        logs = [math.log(v) for v in values]
        pairs = [abs(b / a - 1) for a, b in itertools.permutations(values, 2)]
        rows.append({"cell": key[0], "setting": key[1], "task": runs[0][key].get("task"), "capacities": values,
                     "intervals": [r[key]["ci"] for r in runs], "settings": [r[key].get("setting") for r in runs],
                     "overlap": overlap([r[key]["ci"] for r in runs]), "max_change": max(pairs),
                     "sd_log": statistics.stdev(logs) if len(logs) > 1 else float("nan")})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    if len(args.runs) < 2:
        parser.error("give at least two runs")
    rows = summary([server_cells(p) for p in args.runs])
    for row in rows:
        cis = " | ".join(f"{c:.4g} [{i[0]:.4g}, {i[1]:.4g}]" if i else f"{c:.4g} [no interval]"
                         for c, i in zip(row["capacities"], row["intervals"]))
        print(f"{row['cell']} {row['setting']}: {cis}; overlap {row['overlap']}; largest change "
              f"{row['max_change']:.1%}; sd(log) {row['sd_log']:.3f}")
    best = [r for r in rows if r["setting"] == "best"]
    if best:
        pooled = math.sqrt(statistics.fmean(r["sd_log"] ** 2 for r in best))
        print(f"headline capacities: {len(best)} cells, pooled between-run sd {pooled:.1%}; the largest change "
              f"between two runs {max(r['max_change'] for r in best):.1%}; every interval overlapping: "
              f"{all(r['overlap'] for r in best)}")
        for task in sorted({r["task"] for r in best if r["task"]}):
            mine = [r for r in best if r["task"] == task]
            pooled = math.sqrt(statistics.fmean(r["sd_log"] ** 2 for r in mine))
            print(f"  {task}: {len(mine)} cells, pooled between-run sd {pooled:.1%}; every interval overlapping: "
                  f"{all(r['overlap'] for r in mine)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
