"""The report's quality section: per model and device, every quality figure of every variant with
its uncertainty, how the texts were scored, the zero-shot floor flag, and lm-eval's accuracy floors
and McNemar tests (reports/lm_eval_view.py)."""

from __future__ import annotations

from typing import Any

from quantbench.reports import lm_eval_view
from quantbench.reports.model import Analysis, VariantSummary, short_labels
from quantbench.reports.uncertainty import fmt_figure
from quantbench.results import LM_EVAL_PREFIX, METRICS, ZERO_SHOT_AT_FLOOR, metric_spec

#: Kinds of figure the section lists (batch-sensitivity figures have their own section).
QUALITY_KINDS = ("accuracy", "fairness")
#: Info figures that belong beside them: the zero-shot floor.
QUALITY_INFO = ("majority_rate",)
FLOOR_TEXT = "at the majority floor: flagged, not ranked"
LM_EVAL_FLOOR_HELP = ("the share of the task's most frequent answer on the scored documents; at the floor when the "
                      "figure's 95 % interval reaches it (it then reflects a lean towards one answer, not quality)")


def quality_names(summaries: list[VariantSummary]) -> list[str]:
    """The figures any of these variants measured, in :data:`METRICS` order, then lm-eval's by name."""
    present = {name for s in summaries for name in s.quality}
    return [name for name, m in METRICS.items()
            if name in present and (m.kind in QUALITY_KINDS or name in QUALITY_INFO)] + lm_eval_names(present)


def lm_eval_names(present) -> list[str]:
    """The lm-eval figures among ``present``: each figure, then its change against fp32."""
    return sorted((n for n in present if n.startswith(LM_EVAL_PREFIX)), key=lambda n: (n.removesuffix("_delta"), n))


def figure_text(summary: VariantSummary, name: str) -> str:
    text = fmt_figure(name, summary.quality.get(name), summary.quality_ci.get(name), summary.quality_se.get(name))
    if name.startswith(LM_EVAL_PREFIX) and name in summary.quality:
        text += lm_eval_view.mark(summary.quality_extra, name)  # the floor flag, or McNemar's test
    return text


def _floor_text(summary: VariantSummary) -> str:
    flag = summary.quality_extra.get(ZERO_SHOT_AT_FLOOR)
    return FLOOR_TEXT if flag is True else "above the floor" if flag is False else "—"


def scoring_texts(analysis: Analysis) -> list[str]:
    """Each distinct way the run's quality records say their texts were scored."""
    return sorted({s.quality_scoring for s in analysis.variants if s.quality_scoring})


def quality_tables(analysis: Analysis) -> list[dict[str, Any]]:
    """Per model x device (x machine): variants as columns (fp32 first), figures as rows."""
    groups: dict[tuple, list[VariantSummary]] = {}
    for s in analysis.variants:
        if s.quality:
            groups.setdefault((s.variant.model, s.variant.device, s.variant.machine), []).append(s)
    tables = []
    for (model, device, machine), members in sorted(groups.items()):
        members.sort(key=lambda s: (not s.variant.is_fp32, s.variant))
        labels = short_labels([s.variant for s in members])
        rows = []
        for name in quality_names(members):
            rows.append({"name": name, "help": metric_spec(name).description,
                         "cells": [figure_text(s, name) for s in members]})
            if any(lm_eval_view.floor_of(s.quality_extra, name) for s in members):
                rows.append({"name": f"{name} floor", "help": LM_EVAL_FLOOR_HELP,
                             "cells": [lm_eval_view.floor_text(s.quality_extra, name) for s in members]})
        if any(s.quality_scoring for s in members):
            rows.insert(0, {"name": "scored", "help": "how the texts were scored (quality_scoring)",
                            "cells": [s.quality_scoring or "—" for s in members]})
        if any(s.zero_shot_at_floor for s in members):
            rows.insert(0, {"name": "zero-shot", "help": "is the zero-shot score above the majority rate?",
                            "cells": [_floor_text(s) for s in members]})
        tables.append({"title": " · ".join(x for x in (model, device, machine) if x),
                       "variants": [labels[s.variant] for s in members], "rows": rows})
    return tables
