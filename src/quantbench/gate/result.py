"""What a gate decides: one :class:`Row` per (cell, metric), and the :class:`GateResult`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from quantbench.gate.machine import MachineDifference
from quantbench.gate.policy import Policy
from quantbench.gate.verdicts import (  # noqa: F401 - the verdicts are read from here too
    _OUTCOME_RANK,
    FAIL,
    FAILED,
    IMPROVEMENT,
    INSUFFICIENT,
    MISSING,
    NEW,
    NOISE,
    OK,
    PASS,
    REGRESSION,
    UNRESOLVED,
    VERDICTS,
    WARN,
    Row,
)


@dataclass
class GateResult:
    rows: list[Row]
    policy: Policy
    baseline_label: str = "baseline"
    current_label: str = "current"
    machine_differences: list[MachineDifference] = field(default_factory=list)
    machine_failed: bool = False
    warnings: list[str] = field(default_factory=list)
    # What the drift reference says the machine did ({"factor", "per_cell", "low", "high", "cells"}), and
    # each timing metric's between-run noise for this pair of runs (None: not estimated; gate/drift.py).
    machine_drift: dict[str, Any] | None = None
    between_run_noise: dict[str, float | None] = field(default_factory=dict)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.outcome == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures and not self.machine_failed

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression (or anything the policy makes a failure)."""
        return 0 if self.passed else 1

    def past_threshold(self) -> list[Row]:
        """The rows whose measured change is worse than the policy threshold, resolved or not."""
        return [row for row in self.rows if row.past_threshold and row.verdict not in (PASS, IMPROVEMENT)]

    def summary(self) -> str:
        """One line naming the cells whose change is past the threshold, and what the gate made of each."""
        rows = self.past_threshold()
        if not rows:
            return "no cell's change is past its threshold"
        shown = "; ".join(f"{row.cell} {row.metric} {row.verdict}"
                          + (f" (detects {row.mde:.0%})" if row.verdict == UNRESOLVED and row.mde is not None else "")
                          for row in rows[:8])
        more = f"; and {len(rows) - 8} more" if len(rows) > 8 else ""
        return f"{len(rows)} change(s) past the threshold: {shown}{more}"

    def counts(self) -> Counter:
        return Counter(row.verdict for row in self.rows)

    def sorted_rows(self) -> list[Row]:
        """Failures first, then warnings, then the rest, each in run order."""
        return [row for _, row in sorted(enumerate(self.rows), key=lambda item: item[1].sort_key(item[0]))]

    def headline(self) -> str:
        counts = self.counts()
        plural = {REGRESSION: "regressions", IMPROVEMENT: "improvements"}
        parts = [f"{counts[v]} {plural.get(v, v) if counts[v] > 1 else v}" for v in VERDICTS
                 if counts[v] and v != PASS]
        detail = ", ".join(parts) or "no changes beyond the thresholds"
        if self.machine_failed:
            detail = f"machine differs from the baseline (strict); {detail}"
        status = "PASS" if self.passed else "FAIL"
        return f"quantbench gate: {status} ({len(self.rows)} checks; {detail})"

    def render_table(self, *, only_problems: bool = False) -> str:
        from quantbench.gate.render import render_table

        return render_table(self, only_problems=only_problems)

    def to_markdown(self) -> str:
        from quantbench.gate.render import to_markdown

        return to_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        from quantbench.gate.render import to_dict

        return to_dict(self)

    def to_json(self) -> str:
        from quantbench.gate.render import to_json

        return to_json(self)
