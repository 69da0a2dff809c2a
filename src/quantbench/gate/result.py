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
    # What the drift reference says the machine did ({"factor", "reference_floor", "cells"}), and
    # each timing metric's noise floor for this pair of runs (see gate/drift.py).
    machine_drift: dict[str, Any] | None = None
    noise_floors: dict[str, float] = field(default_factory=dict)

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
