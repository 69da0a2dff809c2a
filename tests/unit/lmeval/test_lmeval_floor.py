"""The majority floor of lm-eval accuracy figures, from lm-eval's per-document samples."""

from __future__ import annotations

import pytest

from quantbench.lmeval.floor import at_floor, floor_figures, majority_rate
from quantbench.quality.uncertainty import Z95


def rows(golds, preds, *, with_pairs=True):
    """lm-eval sample rows of a two-choice task: acc per document, and mcc's (gold, prediction) pairs."""
    out = []
    for i, (gold, pred) in enumerate(zip(golds, preds)):
        row = {"doc_id": i, "filter": "none", "target": gold, "acc": float(gold == pred), "metrics": ["acc"]}
        if with_pairs:
            row.update(mcc=(gold, pred), metrics=["acc", "mcc"], target="the tweet's text")  # channel-style target
        out.append(row)
    return out


def test_the_majority_rate_is_the_share_of_the_most_frequent_gold_answer():
    assert majority_rate(rows([0, 0, 0, 1], [0, 0, 0, 0])) == 0.75
    assert majority_rate(rows([0, 1, 1, 1, 1], [0] * 5, with_pairs=False)) == 0.8  # from integer targets
    assert majority_rate([{"doc_id": 0, "target": "free text"}]) is None  # no gold answer: no floor
    assert majority_rate([]) is None


def test_a_variant_that_always_answers_the_majority_label_is_at_the_floor():
    golds = [0] * 75 + [1] * 25
    always_negative = rows(golds, [0] * 100)
    figures = {"lm_eval.t.acc": 0.75, "lm_eval.t.acc_se": 0.0435, "lm_eval.t.mcc": 0.0}
    out = floor_figures({"t": always_negative}, figures)
    assert out == {"lm_eval.t.acc_floor": 0.75, "lm_eval.t.acc_at_floor": True}  # mcc has no floor


def test_a_figure_is_above_the_floor_only_when_its_interval_clears_it():
    floor, se = 0.687, 0.0147
    assert at_floor(floor + Z95 * se, se, floor)  # the interval just reaches it
    assert not at_floor(floor + Z95 * se + 1e-6, se, floor)
    assert at_floor(0.70, se, floor) and not at_floor(0.75, se, floor)
    assert not at_floor(0.70, None, floor)  # no stderr: the point decides


@pytest.mark.parametrize("metric", ["acc", "acc_norm", "acc_mutual_info"])
def test_every_accuracy_figure_of_a_task_gets_its_floor(metric):
    golds = [0] * 6 + [1] * 4
    samples = {"t": rows(golds, golds)}  # every answer right
    out = floor_figures(samples, {f"lm_eval.t.{metric}": 1.0, f"lm_eval.t.{metric}_se": 0.0})
    assert out == {f"lm_eval.t.{metric}_floor": 0.6, f"lm_eval.t.{metric}_at_floor": False}
    assert floor_figures({"other": rows(golds, golds)}, {"lm_eval.t.acc": 1.0}) == {}  # only the figure's own task
