"""Machine drift between two runs, read from the drift reference both runs timed between rounds.

Each latency cell records the reference's time next to its rounds (``extra_info.reference_s``,
one per round, and ``extra_info.reference``, what the reference was). Per cell, the reference's
median current / baseline is what the machine did around that cell, and **that cell's timing is
judged with its own factor divided out**. The machine does not slow every cell alike: on the 2-core
Zen 3 VM two clean runs of one commit moved the reference x0.80 to x1.62 from cell to cell, and
dividing each cell by its own reference tightened the cells' ratios from 0.81-1.72 to 0.79-1.32
(one median factor for the whole run left them wide). The median over cells remains, as a summary.
A change in the code under test does not move a cell's factor: the reference runs none of that code.

The cells then show how much one cell's timing moves between these two runs with nothing changed:
most cells do not change, so the spread of their corrected current / baseline ratios (a robust
standard deviation of the log-ratios, 1.4826 x their median absolute deviation, which the few cells
that did change do not move) is this pair's **between-run noise**. It is added to each cell's own
interval (the rounds' Hodges-Lehmann interval only knows the rounds of one process each), so a
change the pair cannot resolve is *unresolved*, with the smallest change the cell could detect,
never a pass (gate/compare.py). Fewer than :data:`MIN_CELLS_FOR_SPREAD` cells and it is not
estimated: the rounds' interval is all there is, and the gate says so.

Only cells whose two references are the same workload under the same runtime version, threads
and device take part; for the others (or when the policy turns this off) timing is judged on
the raw rounds, with a warning naming why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantbench.results import METRICS, BenchmarkRecord

#: Fewer cells than this and the between-run noise is not estimated (a MAD of four values says little).
MIN_CELLS_FOR_SPREAD = 5
#: A normal distribution's standard deviation over its median absolute deviation.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Correction:
    """The machine's change around one cell, to divide out of that cell's timing."""

    factor: float  # the cell's own reference time, current / baseline

    def current_samples(self, samples: list[float]) -> np.ndarray:
        return np.asarray(samples, float) / self.factor

    def corrected(self, metric: str, current_value: float) -> float:
        """``metric``'s current value as if the machine had run at the baseline's speed: a rate
        (samples/s, tokens/s) rises by the factor, a time falls by it."""
        spec = METRICS.get(metric)
        # A throughput or a serving rate (capacity, QPS) rises with the machine's speed; a time falls.
        rate = (spec.kind == "throughput" or (spec.kind == "serving" and spec.better == "higher")) if spec \
            else metric.startswith("throughput")
        return current_value * self.factor if rate else current_value / self.factor


def _reference_times(record: BenchmarkRecord) -> np.ndarray | str:
    refs = record.extra_info.get("reference_s")
    if not isinstance(refs, list) or not refs:
        return "no drift reference recorded"
    if len(refs) != len(record.samples_s):
        return f"{len(refs)} reference times for {len(record.samples_s)} rounds"
    values = np.asarray(refs, float)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        return "reference times are not all positive and finite"
    return values


def cell_ratio(base: BenchmarkRecord, cur: BenchmarkRecord) -> float | str | None:
    """This cell's reference ratio (current / baseline), the one-line reason there is none, or
    None when neither run recorded a reference (``drift_reference: false``: nothing to warn about)."""
    if not base.extra_info.get("reference_s") and not cur.extra_info.get("reference_s"):
        return None
    sides = {"baseline": _reference_times(base), "current": _reference_times(cur)}
    for side, refs in sides.items():
        if isinstance(refs, str):
            return f"{side}: {refs}"
    base_ref, cur_ref = base.extra_info.get("reference") or {}, cur.extra_info.get("reference") or {}
    # Every field must match: workload name, device, runtime version, threads.
    differ = [f"{k} {base_ref.get(k)!r} vs {cur_ref.get(k)!r}" for k in sorted(set(base_ref) | set(cur_ref))
              if base_ref.get(k) != cur_ref.get(k)]
    if differ:
        return "the reference differs (" + ", ".join(differ) + ")"
    ratio = float(np.median(sides["current"]) / np.median(sides["baseline"]))
    return ratio if math.isfinite(ratio) and ratio > 0 else "reference times are not usable"


@dataclass(frozen=True)
class MachineDrift:
    factor: float  # the median of the cells' factors: a summary, not what any cell is divided by
    ratios: dict[tuple, float]  # cell key -> its reference ratio, the factor its timing is divided by

    def correction(self, key: tuple) -> Correction | None:
        if key not in self.ratios:
            return None
        return Correction(factor=self.ratios[key])

    def to_dict(self) -> dict[str, float | int | None]:
        values = self.ratios.values()
        return {"factor": self.factor, "per_cell": True, "low": min(values), "high": max(values),
                "cells": len(self.ratios)}

    def describe(self) -> str:
        low, high = min(self.ratios.values()), max(self.ratios.values())
        return (f"machine drift: each cell's timing is judged with its own reference's change divided out "
                f"(median x{self.factor:.2f} over {len(self.ratios)} cells, range x{low:.2f} to x{high:.2f}; "
                "the table's 'machine xN' is the cell's own)")


def machine_drift(ratios: dict[tuple, float]) -> MachineDrift | None:
    """The cells' own factors, and their median as the summary."""
    if not ratios:
        return None
    return MachineDrift(factor=float(np.median(list(ratios.values()))), ratios=dict(ratios))


def between_run_sigma(ratios: list[float]) -> float | None:
    """The robust standard deviation of these cells' log current / baseline ratios: how far one cell's
    timing moves between the two runs with nothing changed. None with too few cells to tell."""
    if len(ratios) < MIN_CELLS_FOR_SPREAD:
        return None
    logs = np.log(np.asarray(ratios, float))
    return MAD_TO_SIGMA * float(np.median(np.abs(logs - np.median(logs))))
