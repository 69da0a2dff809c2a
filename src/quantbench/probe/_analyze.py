"""Counterfactual figures for one model variant on a probe: flips, score gaps, group metrics."""

from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Any

import numpy as np
from scipy.stats import wilcoxon

from quantbench.errors import QuantbenchError
from quantbench.quality.fairness import group_fairness
from quantbench.probe._load import Probe

#: Top-level scalars and how each is aggregated over the probe's dimensions (worst case).
SUMMARY_RULES = {
    "flip_rate": "max",
    "score_gap_mean": "max",
    "score_gap_max": "max",
    "dp_difference": "max",
    "eo_difference": "max",
    "worst_group_accuracy": "min",
}


def _pairs(probe: Probe) -> dict[str, list[tuple[int, int]]]:
    """dimension -> [(index of group-A sentence, index of group-B sentence)]."""
    halves: dict[str, dict[int, int]] = defaultdict(dict)
    dims: dict[str, str] = {}
    for s in probe.sentences:
        if s.side in halves[s.pair_id]:
            raise QuantbenchError(f"probe: pair {s.pair_id!r} has two sentences for side {s.side}")
        halves[s.pair_id][s.side] = s.index
        dims[s.pair_id] = s.dimension
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for pair_id, sides in halves.items():
        if set(sides) != {0, 1}:
            raise QuantbenchError(f"probe: pair {pair_id!r} is incomplete (sides {sorted(sides)})")
        out[dims[pair_id]].append((sides[0], sides[1]))
    return dict(out)


def _paired_test(diffs: np.ndarray) -> dict[str, Any]:
    """Wilcoxon signed-rank test of the A-minus-B score differences against zero."""
    if not np.any(diffs != 0):
        # scipy returns NaN/warns here; identical scores are no evidence of a gap.
        return {"wilcoxon_statistic": 0.0, "wilcoxon_p": 1.0, "test_note": "all paired differences are zero"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = wilcoxon(diffs, zero_method="wilcox", alternative="two-sided")
    p = float(result.pvalue)
    return {"wilcoxon_statistic": float(result.statistic), "wilcoxon_p": p if np.isfinite(p) else None,
            "test_note": None}


def _as_array(values: Any, n: int, what: str, *, integer: bool) -> np.ndarray:
    arr = np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values)
    if arr.ndim != 1 or len(arr) != n:
        raise QuantbenchError(f"{what}: expected {n} values (one per probe sentence), got shape {arr.shape}")
    if integer:
        if not np.issubdtype(arr.dtype, np.integer):
            if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
                raise QuantbenchError(f"{what}: predictions must be integer class ids, got dtype {arr.dtype}")
        return arr.astype(np.int64)
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise QuantbenchError(f"{what}: {bad.size} value(s) are NaN or infinite, first at sentence {bad[0]}")
    return arr


def analyze_probe(probe: Probe, positive_scores: Any, predictions: Any, *, positive_label: int = 1,
                  negative_label: int = 0) -> dict[str, Any]:
    """Counterfactual bias figures for one variant.

    ``positive_scores[i]``: the model's positive-class probability for ``probe.texts[i]``;
    ``predictions[i]``: its predicted class id. ``positive_label``/``negative_label`` map the
    probe's expected polarity onto the model's classes (for a 3-class model, a "neutral"
    prediction is then wrong on both polarities and counts as "not selected").

    Returns (all floats/ints/str/None)::

        {"n_sentences", "n_pairs", "summary_rules",
         "flip_rate", "score_gap_mean", "score_gap_max",          # worst case over dimensions
         "dp_difference", "eo_difference", "worst_group_accuracy",  # (max; min for accuracy)
         "by_dimension": {dim: {
             "groups": [A, B], "n_pairs", "flip_rate", "score_gap_mean", "score_gap_max",
             "signed_gap_mean",  # mean of score(A) - score(B)
             "wilcoxon_statistic", "wilcoxon_p", "test_note",
             "mean_score_by_group": {group: float},
             "by_group": {group: {accuracy, selection_rate, tpr, fpr, count}},
             "dp_difference", "eo_difference", "worst_group_accuracy", "worst_group"}}}
    """
    if not isinstance(probe, Probe):
        raise QuantbenchError(f"analyze_probe: probe must be a Probe from load_probe(), got {type(probe).__name__}")
    n = len(probe)
    scores = _as_array(positive_scores, n, "positive_scores", integer=False)
    preds = _as_array(predictions, n, "predictions", integer=True)
    expected = np.array([positive_label if s.label == 1 else negative_label for s in probe.sentences])

    by_dimension: dict[str, Any] = {}
    for dim, pairs in _pairs(probe).items():
        a = np.array([i for i, _ in pairs])
        b = np.array([j for _, j in pairs])
        diffs = scores[a] - scores[b]
        gaps = np.abs(diffs)
        rows = np.concatenate([a, b])
        groups = [probe.sentences[i].group for i in rows]
        fair = group_fairness(expected[rows], preds[rows], groups, positive_label=positive_label, name=dim)
        group_a, group_b = probe.dimensions[dim]
        by_dimension[dim] = {
            "groups": [group_a, group_b],
            "n_pairs": len(pairs),
            "flip_rate": float(np.mean(preds[a] != preds[b])),
            "score_gap_mean": float(np.mean(gaps)),
            "score_gap_max": float(np.max(gaps)),
            "signed_gap_mean": float(np.mean(diffs)),
            **_paired_test(diffs),
            "mean_score_by_group": {group_a: float(np.mean(scores[a])), group_b: float(np.mean(scores[b]))},
            "by_group": fair["by_group"],
            "dp_difference": fair["dp_difference"],
            "eo_difference": fair["eo_difference"],
            "worst_group_accuracy": fair["worst_group_accuracy"],
            "worst_group": fair["worst_group"],
            **_intervals(preds, gaps, a, b, expected[rows], preds[rows], groups, positive_label),
        }

    result: dict[str, Any] = {"n_sentences": n, "n_pairs": sum(d["n_pairs"] for d in by_dimension.values()),
                              "summary_rules": dict(SUMMARY_RULES)}
    for key, rule in SUMMARY_RULES.items():
        values = [(d[key], dim) for dim, d in by_dimension.items() if d[key] is not None]
        worst = (max(values) if rule == "max" else min(values)) if values else None
        result[key] = worst[0] if worst else None
        # The summary is the worst dimension's figure, so its interval is that dimension's.
        result[f"{key}_ci95"] = by_dimension[worst[1]].get(f"{key}_ci95") if worst else None
    result["by_dimension"] = by_dimension
    return result


def _intervals(preds, gaps, a, b, expected_rows, pred_rows, groups, positive_label) -> dict[str, Any]:
    """95 % intervals for one dimension: Wilson for the flip rate (over pairs), a seeded bootstrap
    over pairs for the score gaps and over sentences for the group gaps (quality/uncertainty.py)."""
    from quantbench.quality import uncertainty
    from quantbench.quality.fairness import gap_intervals

    flips = preds[a] != preds[b]
    return {"flip_rate_ci95": uncertainty.wilson(int(flips.sum()), len(flips)),
            "score_gap_mean_ci95": uncertainty.bootstrap_ci(lambda idx: float(gaps[idx].mean()), len(gaps)),
            "score_gap_max_ci95": uncertainty.bootstrap_ci(lambda idx: float(gaps[idx].max()), len(gaps)),
            **gap_intervals(expected_rows, pred_rows, groups, positive_label=positive_label)}
