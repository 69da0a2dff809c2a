"""95 % intervals for a classifier's figures (accuracy, macro scores, agreement, the change from fp32).

The point figures come from the ``evaluate`` metric modules and scikit-learn; the bootstrap
recomputes them from a confusion matrix in numpy, since a thousand resamples through
scikit-learn would take seconds per variant (tests check both give the same figure).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from quantbench.quality import uncertainty


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).astype(float)


def macro_scores(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> dict[str, float]:
    """Macro precision, recall, F1 and balanced accuracy from the confusion matrix (scikit-learn's
    definitions, zero_division=0, over the labels present in either array)."""
    cm = _confusion(y_true, y_pred, k)
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = (support + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    in_truth = support > 0
    return {"precision_macro": float(precision[present].mean()), "recall_macro": float(recall[present].mean()),
            "f1_macro": float(f1[present].mean()), "balanced_accuracy": float(recall[in_truth].mean())}


def classification_intervals(y_true: np.ndarray, y_pred: np.ndarray, ref_pred: np.ndarray, *, k: int,
                             names: list[str] | tuple[str, ...], probs: np.ndarray | None = None,
                             ref_probs: np.ndarray | None = None) -> dict[str, Any]:
    """Balanced accuracy and the majority floor, plus an interval for every figure ``accuracy``
    records: Wilson for shares, a seeded paired bootstrap over texts for the rest."""
    y_true, y_pred, ref_pred = (np.asarray(a, dtype=np.int64) for a in (y_true, y_pred, ref_pred))
    n = len(y_true)
    correct = (y_true == y_pred)
    ref_correct = (y_true == ref_pred)
    same = (y_pred == ref_pred)
    counts = np.bincount(y_true, minlength=k)
    out: dict[str, Any] = {
        "balanced_accuracy": round(float(balanced_accuracy_score(y_true, y_pred)), 6),
        "majority_rate": round(float(counts.max() / n), 6),
        "majority_label": names[int(counts.argmax())] if int(counts.argmax()) < len(names) else int(counts.argmax()),
        "accuracy_ci95": uncertainty.wilson(int(correct.sum()), n),
        "agreement_with_fp32_ci95": uncertainty.wilson(int(same.sum()), n),
        "predictions_changed_vs_fp32": int((~same).sum()),
        # Paired: both variants resampled on the same texts, so the shared difficulty cancels.
        "accuracy_delta_pts_ci95": uncertainty.bootstrap_ci(
            lambda idx: 100.0 * float(correct[idx].mean() - ref_correct[idx].mean()), n, digits=4),
    }
    for key in ("f1_macro", "precision_macro", "recall_macro", "balanced_accuracy"):
        out[f"{key}_ci95"] = uncertainty.bootstrap_ci(lambda idx, key=key: macro_scores(y_true[idx], y_pred[idx], k)[key], n)
    if probs is not None and ref_probs is not None:
        diff = np.abs(np.asarray(probs, dtype=np.float64) - np.asarray(ref_probs, dtype=np.float64)).mean(axis=1)
        mean, se = uncertainty.mean_se(diff)
        out["mean_abs_prob_diff_ci95"] = uncertainty.normal_ci(mean, se)
    return out


def at_floor(figures: dict[str, Any], k: int) -> bool:
    """A zero-shot classifier no better than answering one label: balanced accuracy's interval
    reaches chance (1/k), or accuracy does not beat the majority rate."""
    ci = figures.get("balanced_accuracy_ci95")
    chance = 1.0 / k
    not_above_chance = ci[0] <= chance if ci else figures["balanced_accuracy"] <= chance
    return bool(not_above_chance or figures["accuracy"] <= figures["majority_rate"])
