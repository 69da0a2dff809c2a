"""Timing evidence from whole processes, where the noise between runs lives (measures/processes.py).

When both runs took a cell's rounds in at least two processes (``extra_info.processes``), each
process is one sample: its median over its own drift reference's median. The change is the ratio
of the geometric means of the two sides' samples, tested on the log scale:

* **unpaired** (a stored baseline): Welch's t on the log samples, its interval and p-value;
* **interleaved** (``quantbench ab``: both sides ran in the same job, in blocks A B B A ...): each
  block holds the processes of both sides timed next to each other, so the test may be a one-sample t
  on the per-block log-ratios (slow changes of the machine cancel within a block; from four blocks),
  or Welch's over the processes when that interval is narrower. Either way no between-run noise is added: both sides shared the job's machine.

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
#: A paired test needs this many blocks: with fewer its spread is a guess (two blocks: one degree of
#: freedom), and choosing it when the two block differences happen to agree was a false alarm in the study.
MIN_PAIRED_BLOCKS = 4


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
    """Both sides ran in the same blocks of an interleaved job (``quantbench ab``), enough of them to pair."""
    blocks = [p.get("block") for p in (*base_p, *cur_p)]
    return None not in blocks and len({p["block"] for p in base_p} & {p["block"] for p in cur_p}) >= MIN_PAIRED_BLOCKS


def _fit(b: dict[Any, float], c: dict[Any, float], paired: bool) -> tuple[float, float, float]:
    """(center, se, df) of the log ratio current / baseline, paired by block or Welch."""
    if paired:
        blocks = sorted(set(b) & set(c), key=str)
        # Several processes of one side in a block: their mean log is the block's sample.
        diffs = np.log([c[k] for k in blocks]) - np.log([b[k] for k in blocks])
        n = len(diffs)
        return float(diffs.mean()), float(diffs.std(ddof=1) / math.sqrt(n)), n - 1
    lb, lc = np.log(list(b.values())), np.log(list(c.values()))
    vb, vc = lb.var(ddof=1) / len(lb), lc.var(ddof=1) / len(lc)
    # Welch-Satterthwaite degrees of freedom; no spread at all gives the smaller n - 1.
    df = ((vb + vc) ** 2 / (vb ** 2 / (len(lb) - 1) + vc ** 2 / (len(lc) - 1))
          if vb + vc > 0 else min(len(lb), len(lc)) - 1)
    return float(lc.mean() - lb.mean()), math.sqrt(vb + vc), df


def process_evidence(base: BenchmarkRecord, cur: BenchmarkRecord, *, alpha: float, references_match: bool
                     ) -> Evidence | None:
    """The process-level evidence for this cell's median (None: a side has too few processes, and
    the rounds decide). ``references_match``: both sides' references are the same workload, so each
    process may be divided by its own."""
    base_p, cur_p = _processes(base), _processes(cur)
    if min(len(base_p), len(cur_p)) < MIN_PROCESSES:
        return None
    references = references_match and _all_referenced(base_p) and _all_referenced(cur_p)
    interleaved = all("block" in p for p in (*base_p, *cur_p))
    pairable = paired_blocks(base_p, cur_p)
    fits = []
    for normalize in ((True, False) if references else (False,)):
        for paired in ((True, False) if pairable else (False,)):
            b, c = _samples(base_p, normalize, paired), _samples(cur_p, normalize, paired)
            center, se, df = _fit(b, c, paired)
            half = float(stats.t.ppf(1 - alpha / 2, df)) * se if se > 0 else 0.0
            fits.append((half, center, se, df, paired, normalize, b, c))
    # The narrowest of the valid intervals. Dividing by the reference helps where the machine changes
    # faster than a process (the Zen 3 VM: the processes' spread halved) and hurts where the reference is
    # noisier than the machine (the project's Xeon VM); pairing by block helps when blocks differ, and
    # with two blocks costs all but one degree of freedom. The choice reads only the spread, which does
    # not depend on the shift being tested. A paired test is a candidate from MIN_PAIRED_BLOCKS blocks.
    half, center, se, df, paired, normalize, b, c = min(fits, key=lambda fit: fit[0])
    p_value = (1.0 if center == 0 else 0.0) if se == 0 else float(2 * stats.t.sf(abs(center) / se, df))
    how = (("interleaved, paired by block" if paired else "interleaved, unpaired") if interleaved else "unpaired") \
        + (", each divided by its own drift reference" if normalize else ", raw medians")
    confidence = 1 - alpha
    return Evidence(n_baseline=len(b), n_current=len(c), sufficient=True, p_value=p_value,
                    ratio=math.exp(center), ci=(math.exp(center - half), math.exp(center + half)),
                    confidence=confidence, level="processes", se_log=se, df=float(df), method=how)


def runs_of(record: BenchmarkRecord) -> int:
    """How many runs (blocks of ``quantbench ab``) a cell's processes came from; 1 without blocks."""
    return len({p.get("block") for p in _processes(record)}) or 1


def run_level_sigma(records) -> float | None:
    """How far one run's mean moves beyond what its processes' spread explains (a standard deviation
    of log time), pooled over the cells of an interleaved job; None without two runs of a cell.

    Within one side of a ``quantbench ab`` job every run is the same code, so the spread of a cell's
    run means around each other, less the part its processes account for (their within-run variance
    over their count), is the run-level noise, estimated without touching the shift between the sides.
    The median over cells keeps one odd cell from setting it. Raw medians: what the study's cells
    were judged on.
    """
    excess = []
    for record in records:
        runs: dict[Any, list[float]] = {}
        for p in _processes(record):
            if "block" not in p:
                break
            runs.setdefault(p["block"], []).append(math.log(float(p["median_ms"])))
        else:
            if len(runs) < 2 or min(len(v) for v in runs.values()) < 2:
                continue
            means = [float(np.mean(v)) for v in runs.values()]
            expected = float(np.mean([np.var(v, ddof=1) / len(v) for v in runs.values()]))
            excess.append(float(np.var(means, ddof=1)) - expected)
    if not excess:
        return None
    return math.sqrt(max(0.0, float(np.median(excess))))
