"""Drift correction: judge a cell's rounds divided by the reference time paired with each round.

Both runs must carry the reference (``extra_info.reference_s``, one value per round, and
``extra_info.reference``, what the reference was). It is used only when the two references are
the same workload under the same runtime version, threads and device; otherwise a change in software or
threads would be divided out with the drift, so the gate falls back to raw timings and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantbench.results import BenchmarkRecord



@dataclass(frozen=True)
class Correction:
    """Per-round ratios round / paired reference for both runs, and how far the reference moved."""

    baseline: np.ndarray
    current: np.ndarray
    factor: float  # median reference time, current / baseline (1.23: the machine was 23 % slower)

    def corrected(self, metric: str, baseline_value: float) -> float:
        """``metric``'s current value with the machine's change divided out."""
        if metric == "latency_p95_ms":
            scale = np.percentile(self.current, 95) / np.percentile(self.baseline, 95)
        else:
            scale = np.median(self.current) / np.median(self.baseline)
        if metric.startswith("throughput"):
            scale = 1 / scale
        return float(baseline_value * scale)


def _paired(record: BenchmarkRecord) -> tuple[np.ndarray, np.ndarray] | str:
    refs = record.extra_info.get("reference_s")
    if not isinstance(refs, list) or not refs:
        return "no drift reference recorded"
    if len(refs) != len(record.samples_s):
        return f"{len(refs)} reference times for {len(record.samples_s)} rounds"
    rounds, refs = np.asarray(record.samples_s, float), np.asarray(refs, float)
    if not (np.all(np.isfinite(refs)) and np.all(refs > 0)):
        return "reference times are not all positive and finite"
    return rounds, refs


def correction(base: BenchmarkRecord, cur: BenchmarkRecord) -> Correction | str | None:
    """The correction for one cell, the one-line reason there is none, or None when neither run
    recorded a reference (measured with ``drift_reference: false``: nothing to warn about)."""
    if not base.extra_info.get("reference_s") and not cur.extra_info.get("reference_s"):
        return None
    base_pairs, cur_pairs = _paired(base), _paired(cur)
    for side, pairs in (("baseline", base_pairs), ("current", cur_pairs)):
        if isinstance(pairs, str):
            return f"{side}: {pairs}"
    base_ref, cur_ref = base.extra_info.get("reference") or {}, cur.extra_info.get("reference") or {}
    # Every field must match: workload name, device, runtime version, threads.
    differ = [f"{k} {base_ref.get(k)!r} vs {cur_ref.get(k)!r}" for k in sorted(set(base_ref) | set(cur_ref))
              if base_ref.get(k) != cur_ref.get(k)]
    if differ:
        return "the reference differs (" + ", ".join(differ) + ")"
    (b_rounds, b_refs), (c_rounds, c_refs) = base_pairs, cur_pairs
    factor = float(np.median(c_refs) / np.median(b_refs))
    if not math.isfinite(factor):
        return "reference times are not usable"
    return Correction(baseline=b_rounds / b_refs, current=c_rounds / c_refs, factor=factor)
