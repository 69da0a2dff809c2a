"""Group fairness on predictions with a sensitive attribute, through fairlearn.

Pure functions over labels: the caller runs the model. Results are plain JSON-able dicts
(floats, str keys, ``None`` where a figure is undefined).

Labels may be multi-class. Accuracy uses the labels as given; selection rate, TPR, FPR,
demographic parity and equalized odds are one-vs-rest for ``positive_label`` (fairlearn's
rates are defined for binary outcomes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

from quantbench.errors import QuantbenchError

__all__ = ["group_fairness", "group_fairness_frame", "fairness_deltas", "SCALAR_KEYS"]

# Error messages as constants, so tests and callers can match them.
_SINGLE_GROUP = ("sensitive attribute {name!r} has a single group ({group!r}): group fairness needs at "
                 "least two groups")
_LENGTH = "sensitive attribute {name!r} has {n} items but y_true has {n_true}"
_MISSING_COLUMN = "column {column!r} ({role}) is not in the table; columns: {columns}"
_MISSING_GROUP = "sensitive attribute {name!r} has {count} missing value(s) (NaN/None), first at row {row}"
_EMPTY = "y_true is empty: no predictions to assess"

#: The scalar keys of a :func:`group_fairness` result, which :func:`fairness_deltas` compares.
SCALAR_KEYS = ("dp_difference", "eo_difference", "worst_group_accuracy")


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None  # NaN is not valid JSON


def _column(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values, dtype=object)
    if arr.ndim != 1:
        raise QuantbenchError(f"{what}: expected a 1-d column, got shape {arr.shape}")
    return arr


def _labels(values: Any, what: str) -> np.ndarray:
    # Native dtype (not object) so scikit-learn recognises the label type.
    arr = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if arr.ndim != 1:
        raise QuantbenchError(f"{what}: expected a 1-d column, got shape {arr.shape}")
    return arr


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT


def _one_attribute(y_true: np.ndarray, y_pred: np.ndarray, sensitive: Any, name: str,
                   positive_label: Any) -> dict[str, Any]:
    groups = _column(sensitive, f"sensitive attribute {name!r}")
    if len(groups) != len(y_true):
        raise QuantbenchError(_LENGTH.format(name=name, n=len(groups), n_true=len(y_true)))
    missing = [i for i, g in enumerate(groups) if _is_missing(g)]
    if missing:
        raise QuantbenchError(_MISSING_GROUP.format(name=name, count=len(missing), row=missing[0]))
    groups = np.asarray([str(g) for g in groups])  # str keys: JSON-able and sortable
    distinct = sorted(set(groups.tolist()))
    if len(distinct) < 2:
        raise QuantbenchError(_SINGLE_GROUP.format(name=name, group=distinct[0]))

    # One-vs-rest for the rates; ints so fairlearn sees a binary problem.
    t_bin = (y_true == positive_label).astype(int)
    p_bin = (y_pred == positive_label).astype(int)
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "count": lambda t, p: len(t),
        },
        y_true=t_bin,
        y_pred=p_bin,
        sensitive_features=pd.Series(groups, name=name),
    )
    acc = MetricFrame(metrics=accuracy_score, y_true=y_true, y_pred=y_pred,
                      sensitive_features=pd.Series(groups, name=name))
    by_group: dict[str, dict[str, Any]] = {}
    for group in distinct:
        row = frame.by_group.loc[group]
        by_group[group] = {
            "accuracy": _number(acc.by_group.loc[group]),
            "selection_rate": _number(row["selection_rate"]),
            "tpr": _number(row["tpr"]),
            "fpr": _number(row["fpr"]),
            "count": int(row["count"]),
        }
    accuracies = {g: v["accuracy"] for g, v in by_group.items() if v["accuracy"] is not None}
    worst = min(accuracies, key=lambda g: (accuracies[g], g))
    return {
        "by_group": by_group,
        "dp_difference": _number(demographic_parity_difference(t_bin, p_bin, sensitive_features=groups)),
        "eo_difference": _number(equalized_odds_difference(t_bin, p_bin, sensitive_features=groups)),
        "worst_group_accuracy": accuracies[worst],
        "worst_group": worst,
        "group_sizes": {g: v["count"] for g, v in by_group.items()},
        "n_groups": len(distinct),
    }


def group_fairness(y_true: Any, y_pred: Any, sensitive: Any, *, positive_label: Any = 1,
                   name: str | None = None) -> dict[str, Any]:
    """Per-group accuracy, selection rate, TPR and FPR; DP and EO differences; worst group.

    ``sensitive`` is one column (list, array, Series) or a mapping ``{attribute: column}``
    (or a DataFrame, one attribute per column). For one column the result is::

        {"by_group": {group: {"accuracy", "selection_rate", "tpr", "fpr", "count"}},
         "dp_difference", "eo_difference", "worst_group_accuracy", "worst_group",
         "group_sizes": {group: count}, "n_groups"}

    For a mapping it is ``{attribute: <that dict>}``. Group names become strings.

    Raises :class:`QuantbenchError` (naming the attribute) when lengths differ, a group
    value is missing, or an attribute has a single group: differences between groups are
    undefined there, and a silent 0.0 would read as "perfectly fair".
    """
    y_t = _labels(y_true, "y_true")
    y_p = _labels(y_pred, "y_pred")
    if len(y_t) == 0:
        raise QuantbenchError(_EMPTY)
    if len(y_p) != len(y_t):
        raise QuantbenchError(f"y_pred has {len(y_p)} items but y_true has {len(y_t)}")
    for arr, what in ((y_t, "y_true"), (y_p, "y_pred")):
        if any(_is_missing(v) for v in arr):
            raise QuantbenchError(f"{what} contains missing values (NaN/None)")
    if isinstance(sensitive, pd.DataFrame):
        sensitive = {str(c): sensitive[c] for c in sensitive.columns}
    if isinstance(sensitive, Mapping):
        if not sensitive:
            raise QuantbenchError("sensitive: no attributes given")
        return {str(attr): _one_attribute(y_t, y_p, col, str(attr), positive_label)
                for attr, col in sensitive.items()}
    attr = name or (str(sensitive.name) if isinstance(sensitive, pd.Series) and sensitive.name is not None
                    else "sensitive")
    return _one_attribute(y_t, y_p, sensitive, attr, positive_label)


def group_fairness_frame(frame: pd.DataFrame, *, y_true: str, y_pred: str, sensitive: str | list[str],
                         positive_label: Any = 1) -> dict[str, Any]:
    """:func:`group_fairness` on columns of a table (e.g. a saved predictions CSV).

    ``sensitive`` is one column name (result for that attribute) or a list of names
    (result per attribute). A column that is not there is named in the error.
    """
    names = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    for column, role in [(y_true, "y_true"), (y_pred, "y_pred")] + [(c, "sensitive") for c in names]:
        if column not in frame.columns:
            raise QuantbenchError(_MISSING_COLUMN.format(column=column, role=role,
                                                         columns=", ".join(map(str, frame.columns))))
    if isinstance(sensitive, str):
        return group_fairness(frame[y_true], frame[y_pred], frame[sensitive], positive_label=positive_label,
                              name=sensitive)
    return group_fairness(frame[y_true], frame[y_pred], {c: frame[c] for c in names},
                          positive_label=positive_label)


def _delta(current: Any, reference: Any) -> float | None:
    if current is None or reference is None:
        return None
    return float(current) - float(reference)


def fairness_deltas(current: Mapping[str, Any], fp32: Mapping[str, Any]) -> dict[str, Any]:
    """Change from fp32 (``current - fp32``) for each scalar and each group's accuracy.

    Takes two results of :func:`group_fairness` (single or per-attribute) and returns
    ``{"dp_difference", "eo_difference", "worst_group_accuracy", "accuracy_by_group": {group}}``
    (per attribute for per-attribute results). Other shared numeric top-level keys (e.g.
    the probe's ``flip_rate``) are compared too. ``None`` where either side is undefined.
    """
    if not isinstance(current, Mapping) or not isinstance(fp32, Mapping):
        raise QuantbenchError("fairness_deltas: both arguments must be result dicts")
    if "by_group" not in current and "by_group" not in fp32 and "by_dimension" not in current:
        # Per-attribute results: recurse attribute by attribute.
        if set(current) != set(fp32):
            raise QuantbenchError(f"fairness_deltas: attributes differ: {sorted(current)} vs fp32 {sorted(fp32)}")
        return {attr: fairness_deltas(current[attr], fp32[attr]) for attr in current}
    out: dict[str, Any] = {}
    for key, value in current.items():
        ref = fp32.get(key)
        # Counts and test statistics are not figures whose change means anything.
        if key in ("n_groups", "n_pairs", "n_sentences", "wilcoxon_statistic", "wilcoxon_p") or isinstance(
                value, bool):
            continue
        if isinstance(value, (int, float)) or (value is None and key in SCALAR_KEYS):
            if key in fp32 and (ref is None or isinstance(ref, (int, float))):
                out[key] = _delta(value, ref)
    if "by_group" in current or "by_group" in fp32:
        cur_groups, ref_groups = current.get("by_group") or {}, fp32.get("by_group") or {}
        if set(cur_groups) != set(ref_groups):
            raise QuantbenchError(
                f"fairness_deltas: groups differ: {sorted(cur_groups)} vs fp32 {sorted(ref_groups)}")
        out["accuracy_by_group"] = {g: _delta(cur_groups[g].get("accuracy"), ref_groups[g].get("accuracy"))
                                    for g in cur_groups}
    if "by_dimension" in current and "by_dimension" in fp32:
        out["by_dimension"] = {d: fairness_deltas(current["by_dimension"][d], fp32["by_dimension"][d])
                               for d in current["by_dimension"] if d in fp32["by_dimension"]}
    return out


def _gap_statistics(t_bin: np.ndarray, p_bin: np.ndarray, correct: np.ndarray, codes: np.ndarray,
                    n_groups: int) -> tuple[float, float, float]:
    """DP difference, EO difference and worst-group accuracy, as fairlearn defines them, in numpy
    (fast enough to run a thousand times for a bootstrap; tests check it equals fairlearn's)."""
    count = np.bincount(codes, minlength=n_groups).astype(float)
    pos = np.bincount(codes, weights=t_bin, minlength=n_groups)
    neg = count - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        selection = np.bincount(codes, weights=p_bin, minlength=n_groups) / count
        tpr = np.bincount(codes, weights=p_bin * t_bin, minlength=n_groups) / pos
        fpr = np.bincount(codes, weights=p_bin * (1 - t_bin), minlength=n_groups) / neg
        accuracy = np.bincount(codes, weights=correct, minlength=n_groups) / count
    if np.isnan(selection).any() or np.isnan(tpr).any() or np.isnan(fpr).any():
        return float("nan"), float("nan"), float("nan")  # a group absent from this resample
    dp = float(selection.max() - selection.min())
    eo = float(max(tpr.max() - tpr.min(), fpr.max() - fpr.min()))
    return dp, eo, float(np.nanmin(accuracy))


def gap_intervals(y_true: Any, y_pred: Any, sensitive: Any, *, positive_label: Any = 1) -> dict[str, Any]:
    """95 % seeded-bootstrap intervals (over examples) of DP/EO difference and worst-group accuracy."""
    from quantbench.quality import uncertainty

    y_t, y_p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    groups = np.asarray([str(g) for g in _column(sensitive, "sensitive attribute")])
    _names, codes = np.unique(groups, return_inverse=True)
    n_groups = int(codes.max()) + 1
    t_bin, p_bin = (y_t == positive_label).astype(float), (y_p == positive_label).astype(float)
    correct = (y_t == y_p).astype(float)
    out = {}
    for k, name in enumerate(SCALAR_KEYS):
        out[f"{name}_ci95"] = uncertainty.bootstrap_ci(
            lambda idx, k=k: _gap_statistics(t_bin[idx], p_bin[idx], correct[idx], codes[idx], n_groups)[k],
            len(y_t))
    return out
