"""Batch sensitivity, per variant: a quality figure as the report scores it (each text alone for
batch-sensitive methods, else length-sorted batches that tests show equal to it: the record's
``quality_scoring``) against the same
figure with the texts scored in padded batches of N, as served.

Read from the flat figures of the quality records (:func:`quantbench.results.metric_spec` knows
them by pattern): ``perplexity_at_bs<N>`` and ``perplexity_at_bs<N>_delta_pct``,
``accuracy_at_bs<N>`` and ``accuracy_at_bs<N>_delta_pts``, ``predictions_changed_at_bs<N>``, each
with its ``_ci95`` where given. The change's interval is that of the paired comparison against
that scoring, so an interval containing 0 means batching made no significant difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from quantbench.reports.model import VariantSummary
from quantbench.reports.uncertainty import fmt_figure, fmt_like, interval_verdict
from quantbench.results import batch_size_of

#: base figure -> (suffix of its change, unit of the change)
FIGURES = {"perplexity": ("_delta_pct", "%"), "accuracy": ("_delta_pts", "pts")}


@dataclass(frozen=True)
class BatchRow:
    variant: VariantSummary
    figure: str  # "perplexity" or "accuracy"
    batch_size: int
    unpadded: float | None  # as the report scores it: each text alone or exact-length buckets
    at_batch: float | None
    change: float | None
    change_name: str  # e.g. "perplexity_at_bs8_delta_pct"
    unit: str
    predictions_changed: float | None

    @property
    def change_interval(self) -> tuple[float, float] | None:
        return self.variant.quality_ci.get(self.change_name)

    @property
    def verdict(self) -> str:
        return "—" if self.change is None else interval_verdict(self.change_interval)

    def texts(self) -> dict[str, str]:
        """The row's cells as they are shown (report and cards)."""
        v = self.variant
        at = f"{self.figure}_at_bs{self.batch_size}"
        change = fmt_figure(self.change_name, self.change, self.change_interval, v.quality_se.get(self.change_name))
        ci, se = v.quality_ci.get(self.figure), v.quality_se.get(self.figure)
        if at in v.quality_ci or at in v.quality_se:
            at_batch = fmt_figure(at, self.at_batch, v.quality_ci.get(at), v.quality_se.get(at))
        else:  # no uncertainty of its own: the precision of the figure it is compared with
            at_batch = fmt_like(at, self.at_batch, ci, se)
        return {"unpadded": fmt_figure(self.figure, self.unpadded, ci, se), "at_batch": at_batch,
                "change": change if self.change is None else f"{change} {self.unit}",
                "predictions_changed": "—" if self.predictions_changed is None
                else str(int(self.predictions_changed))}


def batch_rows(summary: VariantSummary) -> list[BatchRow]:
    """One row per figure and batch size the variant's quality records carry, by batch size."""
    sizes = sorted({n for n in (batch_size_of(name) for name in summary.quality) if n is not None})
    rows = []
    for n in sizes:
        for figure, (suffix, unit) in FIGURES.items():
            at, change = f"{figure}_at_bs{n}", f"{figure}_at_bs{n}{suffix}"
            if at not in summary.quality and change not in summary.quality:
                continue
            changed = summary.quality.get(f"predictions_changed_at_bs{n}") if figure == "accuracy" else None
            rows.append(BatchRow(summary, figure, n, summary.quality.get(figure), summary.quality.get(at),
                                 summary.quality.get(change), change, unit, changed))
    return rows
