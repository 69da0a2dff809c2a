"""Is a quality figure's change between two runs larger than the figures' own uncertainty?

A quality figure (accuracy, flip rate, perplexity...) is one number per run, but it is measured
on a sample of texts, so it carries a standard error. With ``significance: true`` a rule asks, on
top of its threshold, that the difference be significant at 95 %:

    |current - baseline| > 1.96 x sqrt(se_baseline² + se_current²)

Each side's se is its record's ``M_se`` where given, else its 95 % interval's width / (2 x 1.96)
(:func:`quantbench.results.metric_std_errors`). The test treats the runs as independent samples.
Both runs usually score the same texts, which makes it conservative: a paired test on the texts
would find smaller differences significant, but the records do not carry per-text scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quantbench.results import Z95, BenchmarkRecord


@dataclass(frozen=True)
class Difference:
    difference: float  # current - baseline, in the metric's unit
    se_baseline: float | None
    se_current: float | None

    @property
    def missing(self) -> str:
        """Which side has no interval ("" when both have one)."""
        sides = [side for side, se in (("baseline", self.se_baseline), ("current run", self.se_current)) if se is None]
        return " and ".join(sides)

    @property
    def se(self) -> float | None:
        if self.missing:
            return None
        return math.hypot(self.se_baseline, self.se_current)

    @property
    def half_width(self) -> float | None:
        """Half-width of the 95 % interval of the difference."""
        return None if self.se is None else Z95 * self.se

    @property
    def significant(self) -> bool:
        return self.half_width is not None and abs(self.difference) > self.half_width

    @property
    def p_value(self) -> float | None:
        """Two-sided, from the normal approximation (shown beside the timing rows' p-values)."""
        if self.se is None:
            return None
        if self.se == 0:
            return 1.0 if self.difference == 0 else 0.0
        return math.erfc(abs(self.difference) / self.se / math.sqrt(2))


def difference(base: BenchmarkRecord, cur: BenchmarkRecord, metric: str) -> Difference:
    return Difference(cur.metrics[metric] - base.metrics[metric], base.std_errors.get(metric),
                      cur.std_errors.get(metric))
