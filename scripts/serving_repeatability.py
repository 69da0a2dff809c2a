"""How repeatable is a serving capacity? Runs of `make serve` of one commit, side by side.

    python scripts/serving_repeatability.py serving-1.json serving-2.json serving-3.json

For each server cell and batcher setting it prints every run's capacity with its 95 % interval,
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


def server_cells(path: Path) -> dict[tuple[str, str], dict]:
    """{(cell, setting): {capacity, ci}} of one run; setting "best" is the cell's headline figure."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info", {})
        if extra.get("scenario") != "server":
            continue
        cell = bench["name"]
        if extra.get("capacity_qps"):
            out[(cell, "best")] = {"capacity": extra["capacity_qps"], "ci": extra.get("capacity_qps_ci95"),
                                   "setting": extra.get("capacity_setting")}
        for setting in extra.get("serving", {}).get("settings", []):
            if setting.get("capacity_qps"):
                out[(cell, str(setting["setting"]))] = {"capacity": setting["capacity_qps"],
                                                        "ci": setting.get("capacity_ci95")}
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
        rows.append({"cell": key[0], "setting": key[1], "capacities": values,
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
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
