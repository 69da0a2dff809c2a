#!/usr/bin/env python
"""The gate's repeatability study (docs/gating.md, "The study").

Input: run files of one commit, in the order they ran back to back, from
``pytest --pyargs quantbench.bench.test_performance --suite gate-study --benchmark-json run-NN.json``
(each cell's rounds in ``measure.processes`` processes). Output: Markdown tables on stdout.

* **Stored baseline**: consecutive runs (i, i+1) gated as baseline and current, each pair two
  independent runs; once on every process ("processes") and once on the harness's process alone
  ("one process": what a run without ``measure.processes`` records).
* **Interleaved**: four consecutive runs as one ``quantbench ab`` job of two blocks, A B | B A, pooled
  per side exactly as ``quantbench ab`` pools them (gate/pooled.py).
* **Plants**: *natural* ones replace the candidate's ONNX Runtime fp32 cell at sequence 64 by the same
  variant measured at 68 or 73 tokens (relabelled; its timings untouched), and *scaled* ones multiply
  one cell's rounds by 1.1, 1.2 or 1.5 (each of the four sequence-64 cells in turn).

A false alarm is a cell-metric judged a regression or an improvement between runs of one commit; a
pair "fails" when the gate's exit code is 1 under the default policy.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
from pathlib import Path

from quantbench.gate import gate_runs, load_policy
from quantbench.gate.interleave import BASELINE, CANDIDATE, schedule
from quantbench.gate.pooled import pool_runs
from quantbench.gate.result import IMPROVEMENT, REGRESSION, UNRESOLVED
from quantbench.results import parse_run

TARGET = "minilm-tweets-fp32-onnxruntime-cpu-bs8-seq64"
NATURAL = {"seq68": "minilm-tweets-fp32-onnxruntime-cpu-bs8-seq68", "seq73": "minilm-tweets-fp32-onnxruntime-cpu-bs8-seq73"}
SCALES = (1.1, 1.2, 1.5)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def latency(run: dict) -> dict[str, dict]:
    return {b["param"]: b for b in run["benchmarks"] if b["name"].startswith("test_latency")}


def base_cells(run: dict) -> list[str]:
    return [cell for cell in latency(run) if cell.endswith("seq64")]


def first_processes(run: dict, k: int) -> dict:
    """The run as if each cell had taken its rounds in its first ``k`` processes (the harness's and
    ``k - 1`` workers, in the order they ran); ``k = 1`` is a run without ``measure.processes``."""
    from quantbench.measures.latency import summarize

    run = copy.deepcopy(run)
    for bench in latency(run).values():
        extra = bench["extra_info"]
        procs = extra.get("processes") or []
        n = sum(p["rounds"] for p in procs[:k])
        bench["stats"]["data"] = bench["stats"]["data"][:n]
        extra["reference_s"] = extra["reference_s"][:n]
        if k == 1:
            extra.pop("processes", None)
        else:
            extra["processes"] = procs[:k]
        extra.update(summarize(bench["stats"]["data"], batch_size=bench["params"]["batch_size"],
                               seq_len=bench["params"]["seq_len"]))
    return run


def only(run: dict, cells: list[str]) -> dict:
    run = copy.deepcopy(run)
    run["benchmarks"] = [b for b in run["benchmarks"] if not b["name"].startswith("test_latency") or b["param"] in cells]
    return run


def relabel(run: dict, source: str) -> dict:
    """``run`` whose TARGET cell is its ``source`` cell (measured at more tokens), relabelled."""
    run = copy.deepcopy(run)
    benches = latency(run)
    moved = copy.deepcopy(benches[source])
    for key in ("param", "name", "fullname"):
        moved[key] = moved[key].replace(source, TARGET)
    moved["params"]["seq_len"] = 64
    moved["extra_info"]["cell_id"] = TARGET
    run["benchmarks"] = [b for b in run["benchmarks"] if b.get("param") not in (TARGET, source)] + [moved]
    return run


def scaled(run: dict, cell: str, factor: float) -> dict:
    run = copy.deepcopy(run)
    bench = latency(run)[cell]
    bench["stats"]["data"] = [x * factor for x in bench["stats"]["data"]]
    extra = bench["extra_info"]
    extra["latency_ms"] = {k: v * factor if isinstance(v, (int, float)) else v for k, v in extra["latency_ms"].items()}
    for name in ("throughput_samples_per_s", "throughput_tokens_per_s"):
        extra[name] /= factor
    for proc in extra.get("processes") or []:
        proc["median_ms"] *= factor
    return run


POLICY = {"name": None}


def gate(base: dict, cur: dict):
    return gate_runs(parse_run(base), parse_run(cur), policy=load_policy(POLICY["name"]))


def p50_row(result, cell: str):
    (row,) = [r for r in result.rows if r.metric == "latency_p50_ms" and r.cell == f"test_latency[{cell}]"]
    return row


def pooled(runs: list[dict], blocks: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, run in enumerate(runs):
            path = Path(tmp) / f"{i}.json"
            path.write_text(json.dumps(run))
            paths.append(path)
        return pool_runs(paths, blocks)


def pairs(runs: list[dict], mode: str, blocks: int = 2):
    """(baseline, current, job) per comparison: stored pairs (i, i+1), or ``quantbench ab`` jobs of
    ``blocks`` blocks over consecutive runs (A B | B A | ..., windows two runs apart); ``job`` lists
    (block, side, run) for the plants to be made in each of the candidate's runs."""
    if mode == "interleaved":
        order = schedule(blocks)
        for i in range(0, len(runs) - len(order) + 1, 2):
            job = [(block, side, run) for (block, side), run in zip(order, runs[i:i + len(order)])]
            yield side_of(job, BASELINE), side_of(job, CANDIDATE), job
    else:
        for i in range(len(runs) - 1):
            yield runs[i], runs[i + 1], None


def side_of(job, side: str, plant=lambda run: run) -> dict:
    mine = [(block, run) for block, s, run in job if s == side]
    return pooled([plant(run) for _, run in mine], [block for block, _ in mine])


def planted(base: dict, cur: dict, job, plant, base_view=lambda run: run) -> tuple[dict, dict]:
    """(baseline, current) with ``plant`` made in the candidate's run(s)."""
    if job is None:
        return base_view(base), plant(cur)
    return side_of(job, BASELINE, base_view), side_of(job, CANDIDATE, plant)


def study(runs: list[dict], mode: str, blocks: int = 2) -> dict:
    clean_metrics = clean_false = clean_unresolved = failed_pairs = comparisons = 0
    mdes = []
    detect: dict[str, list[int]] = {}
    observed: dict[str, list[float]] = {}
    per_cell: dict[str, list[bool]] = {}
    for base, cur, job in pairs(runs, mode, blocks):
        comparisons += 1
        result = gate(base, cur)
        timing = [r for r in result.rows if r.metric in ("latency_p50_ms", "latency_p95_ms", "throughput_samples_per_s")]
        clean_metrics += len(timing)
        clean_false += sum(r.verdict in (REGRESSION, IMPROVEMENT) for r in timing)
        clean_unresolved += sum(r.verdict == UNRESOLVED for r in timing)
        failed_pairs += result.exit_code != 0
        mdes += [r.mde for r in timing if r.metric == "latency_p50_ms" and r.mde is not None]
        cells = base_cells(base)
        candidate_runs = [run for _, side, run in job if side == CANDIDATE] if job else [cur]
        for name, source in NATURAL.items():
            a_side, b_plant = planted(base, cur, job, lambda r: only(relabel(r, source), cells),
                                      base_view=lambda r: only(r, cells))
            res = gate(a_side, b_plant)
            detect.setdefault(f"natural {name}", []).append(p50_row(res, TARGET).verdict == REGRESSION
                                                            and res.exit_code == 1)
            # The plant's size as the same run measured it: the variant at 6x tokens over 64.
            observed.setdefault(f"natural {name}", []).extend(
                latency(r)[source]["extra_info"]["latency_ms"]["p50"] / latency(r)[TARGET]["extra_info"]["latency_ms"]["p50"]
                for r in candidate_runs)
        for factor in SCALES:
            for cell in cells:
                a_side, b_plant = planted(base, cur, job, lambda r: scaled(r, cell, factor))
                res = gate(a_side, b_plant)
                caught = p50_row(res, cell).verdict == REGRESSION and res.exit_code == 1
                detect.setdefault(f"scaled x{factor}", []).append(caught)
                if factor == 1.2:
                    per_cell.setdefault(cell, []).append(caught)
    return {"comparisons": comparisons, "clean_metrics": clean_metrics, "false_alarms": clean_false,
            "unresolved": clean_unresolved, "failed_pairs": failed_pairs,
            "mde_p50_median": statistics.median(mdes) if mdes else None, "detect": detect, "observed": observed,
            "per_cell": per_cell}


def variance_table(runs: list[dict]) -> list[str]:
    lines = ["| cell | between-process share | between sd | within sd | CV of process medians across runs |",
             "| --- | --- | --- | --- | --- |"]
    for cell in latency(runs[0]):
        shares = [latency(r)[cell]["extra_info"].get("process_variance") or {} for r in runs]
        medians = [p["median_ms"] for r in runs for p in latency(r)[cell]["extra_info"].get("processes") or []]
        cv = statistics.pstdev(medians) / statistics.mean(medians) if medians else float("nan")
        lines.append(f"| {cell} | {statistics.median(s.get('between_share', 0) for s in shares):.0%} | "
                     f"{statistics.median(s.get('between_sd', 0) for s in shares):.1%} | "
                     f"{statistics.median(s.get('within_sd', 0) for s in shares):.1%} | {cv:.1%} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run files in the order they ran")
    parser.add_argument("--policy", help="a gate policy (default: the built-in one)")
    args = parser.parse_args(argv)
    POLICY["name"] = args.policy
    runs = [load(p) for p in args.runs]
    out = ["## Variance across processes (per cell, median over runs)", "", *variance_table(runs), ""]
    out += ["## False alarms and detection", "",
            "| mode | comparisons | pairs failing, clean | false alarms / 100 cell-metrics | unresolved / 100 | "
            "p50 MDE (median) | " + " | ".join(["natural seq68", "natural seq73", *(f"scaled x{f}" for f in SCALES)]) + " |",
            "| --- " * 11 + "|"]
    most = min(len(latency(r)[c]["extra_info"].get("processes") or [1]) for r in runs for c in latency(r))
    counts = sorted({1, 3, most} - {k for k in (3,) if k > most})
    modes = [(f"stored, {k} process{'es' if k > 1 else ''}", k, "stored", 0) for k in counts]
    modes += [(f"interleaved (ab, {b} blocks of {k})", k, "interleaved", b) for k in counts if k > 1 for b in (2, 4)]
    per_cell_rows = []
    for label, k, mode, blocks in modes:
        s = study([first_processes(r, k) for r in runs], mode, blocks)
        per_cell_rows.append((label, s["per_cell"]))
        cols = []
        for key in ("natural seq68", "natural seq73", *(f"scaled x{f}" for f in SCALES)):
            hits = s["detect"].get(key, [])
            cols.append(f"{sum(hits)}/{len(hits)}")
        mde = f"{s['mde_p50_median']:.0%}" if s["mde_p50_median"] is not None else "-"
        out.append(f"| {label} | {s['comparisons']} | {s['failed_pairs']}/{s['comparisons']} | "
                   f"{100 * s['false_alarms'] / max(1, s['clean_metrics']):.1f} | "
                   f"{100 * s['unresolved'] / max(1, s['clean_metrics']):.1f} | {mde} | " + " | ".join(cols) + " |")
        observed = s["observed"]
    out += ["", "Scaled x1.2 plants caught, per cell:", "",
            "| mode | " + " | ".join(base_cells(runs[0])) + " |", "| --- " * (1 + len(base_cells(runs[0]))) + "|"]
    for label, per_cell in per_cell_rows:
        out.append(f"| {label} | " + " | ".join(f"{sum(v)}/{len(v)}" for v in per_cell.values()) + " |")
    out += ["", "Natural plants, as measured (the variant at 68 / 73 tokens over 64, same run): "
            + ", ".join(f"{k.split()[-1]} x{statistics.median(v):.3f} (x{min(v):.3f} to x{max(v):.3f})"
                        for k, v in observed.items())]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
