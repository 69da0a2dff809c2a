"""Machine drift between two runs, read from the drift reference both runs timed between rounds.

Each latency cell records the reference's time next to its rounds (``extra_info.reference_s``,
one per round, and ``extra_info.reference``, what the reference was). Per cell, the reference's
median current / baseline is what the machine did around that cell. Across cells:

* the **machine factor** is the median of those ratios: how much slower (or faster) the machine
  ran as a whole. Timing is judged with it divided out. A change in the code under test does not
  move it: the reference runs none of that code.
* the **reference floor** is the largest distance of any cell's ratio from the machine factor:
  how much the machine wandered locally.

The cells themselves show how noisy a cell's timing is between these two runs: most cells do not
change, so the spread of their current / baseline ratios (median absolute deviation, robust to
the few that did) is the noise of one cell. A change counts only if it stands out from that
spread as an outlier, with a modified z-score over 3.5 (Iglewicz and Hoaglin's cut-off): the
**spread floor**, per timing metric. A timing change must beat the larger floor as well as the
policy threshold, and the gate prints both floors. Where cells move a few percent between runs they are
that small and the threshold rules; on the shared 2-core CI VM they were 40 to 135 % (p50, six back-to-back pairs), and the gate says so
instead of failing on noise.

Only cells whose two references are the same workload under the same runtime version, threads
and device take part; for the others (or when the policy turns this off) timing is judged on
the raw rounds, with a warning naming why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantbench.results import METRICS, BenchmarkRecord

#: Fewer cells with references than this and the reference floor is not estimated.
MIN_CELLS_FOR_FLOOR = 3
#: Fewer cells than this and the spread floor is not estimated (a MAD of four values says little).
MIN_CELLS_FOR_SPREAD = 5
#: Iglewicz and Hoaglin's outlier cut-off for the modified z-score 0.6745 * (x - median) / MAD.
MODIFIED_Z = 3.5


@dataclass(frozen=True)
class Correction:
    """The machine's change, to divide out of one cell's timing."""

    factor: float  # the machine factor: reference time, current / baseline, median over cells

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
    factor: float
    floor: float | None  # None: too few cells to estimate it
    ratios: dict[tuple, float]  # cell key -> its reference ratio

    def correction(self, key: tuple) -> Correction | None:
        if key not in self.ratios:
            return None
        return Correction(factor=self.factor)

    def to_dict(self) -> dict[str, float | int | None]:
        return {"factor": self.factor, "reference_floor": self.floor, "cells": len(self.ratios)}

    def describe(self) -> str:
        low, high = min(self.ratios.values()), max(self.ratios.values())
        floor = (f"reference floor {self.floor:.0%}" if self.floor is not None
                 else f"reference floor not estimated (fewer than {MIN_CELLS_FOR_FLOOR} cells)")
        return (f"machine drift: the reference ran x{self.factor:.2f} the baseline's time (median of "
                f"{len(self.ratios)} cells, range x{low:.2f} to x{high:.2f}); timing is judged with "
                f"x{self.factor:.2f} divided out; {floor}")


def machine_drift(ratios: dict[tuple, float]) -> MachineDrift | None:
    """The machine factor and noise floor from the cells' reference ratios."""
    if not ratios:
        return None
    factor = float(np.median(list(ratios.values())))
    floor = None
    if len(ratios) >= MIN_CELLS_FOR_FLOOR:
        floor = float(max(max(r / factor, factor / r) for r in ratios.values()) - 1)
    return MachineDrift(factor=factor, floor=floor, ratios=dict(ratios))


def spread_floor(ratios: list[float]) -> float | None:
    """The smallest change (relative) that is an outlier among these cells' current / baseline
    ratios: modified z-score over :data:`MODIFIED_Z`. None with too few cells to tell."""
    if len(ratios) < MIN_CELLS_FOR_SPREAD:
        return None
    logs = np.log(np.asarray(ratios, float))
    mad = float(np.median(np.abs(logs - np.median(logs))))
    return math.exp(MODIFIED_Z * mad / 0.6745) - 1
