"""Timing evidence from whole processes, where the noise between runs lives (measures/processes.py).

When both runs took a cell's rounds in at least two processes (``extra_info.processes``), each
process is one sample: its median over its own drift reference's median. The change is the ratio
of the geometric means of the two sides' samples, tested on the log scale:

* **unpaired** (a stored baseline): Welch's t on the log samples, its interval and p-value;
* **paired** (``quantbench ab``: both sides ran in the same job, in blocks A B B A ...): each block
  holds one process of each side, timed next to each other, so the test is a one-sample t on the
  per-block log-ratios. Slow changes of the machine cancel within a block.

Rounds enter only through their process's median, so the interval is as wide as the processes
differ, not as narrow as the rounds inside one process agree.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from quantbench.gate.stats import Evidence
from quantbench.results import BenchmarkRecord

#: Fewer processes than this on a side and the cell is judged on its rounds.
MIN_PROCESSES = 2


def _processes(record: BenchmarkRecord) -> list[dict[str, Any]]:
    found = record.extra_info.get("processes")
    return [p for p in found if isinstance(p, dict) and (p.get("median_ms") or 0) > 0] \
        if isinstance(found, list) else []


def _samples(processes: list[dict[str, Any]], normalize: bool, by_block: bool) -> dict[Any, float]:
    """Block -> the geometric mean of its processes' samples (``by_block``), or position -> each
    process's sample: its median, over its reference's median with ``normalize``."""
    groups: dict[Any, list[float]] = {}
    for i, p in enumerate(processes):
        value = float(p["median_ms"])
        if normalize:
            value /= float(p["reference_median_ms"])
        groups.setdefault(p["block"] if by_block else i, []).append(math.log(value))
    return {key: math.exp(sum(logs) / len(logs)) for key, logs in groups.items()}


def _all_referenced(processes: list[dict[str, Any]]) -> bool:
    return all((p.get("reference_median_ms") or 0) > 0 for p in processes)


def paired_blocks(base_p: list[dict[str, Any]], cur_p: list[dict[str, Any]]) -> bool:
    """Both sides ran in the same blocks of an interleaved job (``quantbench ab``)."""
    blocks = [p.get("block") for p in (*base_p, *cur_p)]
    return None not in blocks and len({p["block"] for p in base_p} & {p["block"] for p in cur_p}) >= MIN_PROCESSES


def _fit(b: dict[Any, float], c: dict[Any, float], paired: bool):
    """(center, se, df, paired, b, c) of the log ratio, paired by block or Welch."""
    if paired:
        blocks = sorted(set(b) & set(c), key=str)
        # Several processes of one side in a block: their mean log is the block's sample.
        diffs = np.log([c[k] for k in blocks]) - np.log([b[k] for k in blocks])
        n = len(diffs)
        return float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(n)), n - 1, True, b, c
    lb, lc = np.log(list(b.values())), np.log(list(c.values()))
    vb, vc = lb.var(ddof=1) / len(lb), lc.var(ddof=1) / len(lc)
    # Welch-Satterthwaite degrees of freedom; no spread at all gives the smaller n - 1.
    df = ((vb + vc) ** 2 / (vb ** 2 / (len(lb) - 1) + vc ** 2 / (len(lc) - 1))
          if vb + vc > 0 else min(len(lb), len(lc)) - 1)
    return float(lc.mean() - lb.mean()), math.sqrt(vb + vc), df, False, b, c


def process_evidence(base: BenchmarkRecord, cur: BenchmarkRecord, *, alpha: float, references_match: bool
                     ) -> Evidence | None:
    """The process-level evidence for this cell's median (None: a side has too few processes, and
    the rounds decide). ``references_match``: both sides' references are the same workload, so each
    process may be divided by its own."""
    base_p, cur_p = _processes(base), _processes(cur)
    if min(len(base_p), len(cur_p)) < MIN_PROCESSES:
        return None
    candidates = [True, False] if references_match and _all_referenced(base_p) and _all_referenced(cur_p) else [False]
    paired = paired_blocks(base_p, cur_p)
    fits = [_fit(_samples(base_p, n, paired), _samples(cur_p, n, paired), paired) for n in candidates]
    # Dividing by the reference helps where the machine changes faster than a process (the Zen 3 VM: the
    # processes' spread halved) and hurts where the reference is noisier than the machine (this project's
    # Xeon VM). The choice reads only the spread, which does not depend on the shift being tested.
    (center, se, df, paired, b, c), normalize = min(zip(fits, candidates), key=lambda f: f[0][1])
    confidence = 1 - alpha
    if se == 0:
        p_value = 1.0 if center == 0 else 0.0
        half = 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(center) / se, df))
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    how = ("paired by block" if paired else "unpaired") + (", each divided by its own drift reference"
                                                           if normalize else ", raw medians")
    return Evidence(n_baseline=len(b), n_current=len(c), sufficient=True, p_value=p_value,
                    ratio=math.exp(center), ci=(math.exp(center - half), math.exp(center + half)),
                    confidence=confidence, level="processes", se_log=se, df=float(df), method=how)
