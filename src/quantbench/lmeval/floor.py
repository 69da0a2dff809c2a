"""The majority floor of an lm-eval multiple-choice task: what always giving one answer scores.

On an unbalanced task, accuracy rewards a model that leans towards the frequent answer: a
variant damaged into answering "negative" to everything scores the share of negative
documents. So each accuracy figure (``acc``, ``acc_norm``, ``acc_mutual_info``...) gets, beside
it in the record:

* ``<figure>_floor``: the majority rate of the documents it was scored on (the share of the
  most frequent gold answer), the accuracy of always giving that answer;
* ``<figure>_at_floor``: True when the figure is not clearly above it, i.e. its 95 % interval
  (lm-eval's stderr, normal) reaches the floor. Such a figure is flagged, not ranked: it says
  how the variant's bias meets the task's label mix, not how well it reads the documents.

The gold answers come from lm-eval's per-document samples: the ``(gold, prediction)`` pairs the
``mcc`` and ``f1`` metrics log, else an integer ``target`` (a multiple-choice task's answer
index). A task whose samples give neither has no floor.
"""

from __future__ import annotations

import numbers
from collections import Counter
from typing import Any

from quantbench.quality.uncertainty import Z95
from quantbench.results import LM_EVAL_AT_FLOOR, LM_EVAL_FLOOR, lm_eval_name

#: Per-document accuracy metrics lm-eval's multiple_choice output type writes.
ACCURACY_METRICS = ("acc", "acc_norm", "acc_bytes", "acc_mutual_info")
#: Per-document metrics that log a (gold, prediction) pair.
PAIR_METRICS = ("mcc", "f1")


def _gold(row: dict[str, Any]) -> int | None:
    for metric in PAIR_METRICS:
        pair = row.get(metric)
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], numbers.Integral):
            return int(pair[0])
    target = row.get("target")
    return int(target) if isinstance(target, numbers.Integral) and not isinstance(target, bool) else None


def majority_rate(rows: list[dict[str, Any]]) -> float | None:
    """The share of the most frequent gold answer over the documents ``rows`` scored, else None."""
    golds = {}
    for row in rows:
        gold = _gold(row)
        if gold is None:
            return None
        golds[row["doc_id"]] = gold  # one per document, whatever the number of filters
    if not golds:
        return None
    return max(Counter(golds.values()).values()) / len(golds)


def at_floor(value: float, se: float | None, floor: float) -> bool:
    """Not clearly above the floor: the figure's 95 % interval (or, without a stderr, itself) reaches it."""
    return bool(value - Z95 * (se or 0.0) <= floor)


def floor_figures(samples: dict[str, list[dict[str, Any]]], figures: dict[str, Any]) -> dict[str, Any]:
    """``<figure>_floor`` and ``<figure>_at_floor`` for every accuracy figure in ``figures`` (the
    record's ``lm_eval.<task>.<metric>[.<filter>]``) whose task's samples give the gold answers."""
    out: dict[str, Any] = {}
    for task, rows in samples.items():
        floor = majority_rate(rows)
        if floor is None:
            continue
        filters = {row.get("filter", "none") for row in rows}
        for metric in ACCURACY_METRICS:
            for filter_name in filters:
                name = lm_eval_name(task, metric, filter_name)
                if name in figures:
                    out[f"{name}{LM_EVAL_FLOOR}"] = round(floor, 6)
                    out[f"{name}{LM_EVAL_AT_FLOOR}"] = at_floor(figures[name], figures.get(f"{name}_se"), floor)
    return out
