"""The verdicts a gate gives, and one :class:`Row` per (cell, metric): what the comparison writes
and every renderer reads (the result object, gate/result.py, holds the rows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Verdicts. Each row also carries an outcome (pass / warn / fail) that decides the exit code.
PASS = "pass"
REGRESSION = "regression"
IMPROVEMENT = "improvement"
NOISE = "within noise"  # past the threshold, but the samples do not show a real difference
INSUFFICIENT = "insufficient data"
# The rounds cannot tell: the interval of the shift reaches past the threshold but does not clear
# it (a slowdown the size of the threshold is neither shown nor ruled out).
UNRESOLVED = "unresolved"
MISSING = "missing"
NEW = "new"
FAILED = "failed"
VERDICTS = (REGRESSION, FAILED, UNRESOLVED, MISSING, INSUFFICIENT, NOISE, IMPROVEMENT, NEW, PASS)

OK, WARN, FAIL = "pass", "warn", "fail"
_OUTCOME_RANK = {FAIL: 0, WARN: 1, OK: 2}


@dataclass(frozen=True)
class Row:
    cell: str  # "test_latency[minilm-tweets-fp32-pytorch-cpu-bs8-seq64]"
    key: tuple
    metric: str | None  # None for whole-cell rows (missing, new, failed)
    verdict: str
    outcome: str
    baseline: float | None = None
    current: float | None = None
    change: float | None = None  # relative (0.4 = +40%) or absolute, per ``mode``
    mode: str | None = None
    threshold: float | None = None
    better: str | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None  # of ``change`` (relative), from the samples
    note: str = ""
    # Drift-corrected timing rows: ``change`` is judged with the machine's change divided out;
    # ``raw_change`` is current vs baseline as measured, ``drift`` the reference's factor.
    raw_change: float | None = None
    drift: float | None = None
    # Timing rows: the smallest worsening of this metric the cell can detect (alpha, 80 % power), and
    # the pair's between-run noise that widened its interval (gate/compare.py, gate/drift.py).
    mde: float | None = None
    noise: float | None = None
    # What the timing was judged on: "rounds", or "processes: <how>, N vs M" (gate/processes.py).
    evidence: str | None = None

    @property
    def past_threshold(self) -> bool:
        """Is the measured change (drift divided out) worse than the threshold, whatever the verdict?"""
        if self.change is None or self.threshold is None or self.better is None:
            return False
        worse_by = self.change if self.better == "lower" else -self.change
        return worse_by > self.threshold + 1e-12

    def sort_key(self, order: int) -> tuple:
        return (_OUTCOME_RANK[self.outcome], VERDICTS.index(self.verdict), order)

    def to_dict(self) -> dict[str, Any]:
        return {"cell": self.cell, "key": list(self.key), "metric": self.metric, "verdict": self.verdict,
                "outcome": self.outcome, "baseline": self.baseline, "current": self.current,
                "change": self.change, "mode": self.mode, "threshold": self.threshold,
                "better": self.better, "p_value": self.p_value,
                "ci": list(self.ci) if self.ci else None, "note": self.note,
                "raw_change": self.raw_change, "drift": self.drift, "mde": self.mde, "noise": self.noise,
                "evidence": self.evidence}
