"""Accuracy figures: the project's own ``evaluate`` metrics and the fp32 comparisons.

``evaluate.load("accuracy")`` needs the Hub (the wheel ships no metric scripts), so the
four classification metrics quantbench reports are defined here as ``evaluate.Metric``
subclasses that call scikit-learn. :func:`load_metric` maps our names to them and hands any
other name (a Hub id or a local script path) to ``evaluate.load`` for users who are online.

Labels are integer class ids (the features are ``int32``).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import datasets
import evaluate
import numpy as np
from sklearn import metrics as skm

from quantbench.errors import QuantbenchError

__all__ = [
    "Accuracy",
    "F1",
    "Precision",
    "Recall",
    "BUILTIN_METRICS",
    "load_metric",
    "classification_scores",
    "agreement",
    "mean_abs_prob_diff",
    "accuracy_delta_pts",
    "keeps_99pct",
]

_FEATURES = datasets.Features({"predictions": datasets.Value("int32"), "references": datasets.Value("int32")})
_AVERAGES = ("macro", "micro", "weighted", "binary")

_INPUTS = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids.
"""


class _SklearnMetric(evaluate.Metric):
    """Base: keeps the (small) prediction table in memory so nothing is written to the HF cache."""

    _description = ""

    def __init__(self, *args: Any, keep_in_memory: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, keep_in_memory=keep_in_memory, **kwargs)

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self._description,
            citation="scikit-learn: Pedregosa et al., JMLR 12, 2011.",
            inputs_description=_INPUTS,
            features=_FEATURES,
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )


class Accuracy(_SklearnMetric):
    """Share of predictions equal to the reference (``sklearn.metrics.accuracy_score``)."""

    _description = "Accuracy: the share of predictions equal to the reference."

    def _compute(self, predictions: Sequence[int], references: Sequence[int], sample_weight=None) -> dict:
        return {"accuracy": float(skm.accuracy_score(references, predictions, sample_weight=sample_weight))}


class _Averaged(_SklearnMetric):
    _key = ""
    _fn = staticmethod(lambda *a, **k: 0.0)

    def _compute(self, predictions, references, average: str = "macro", labels=None, pos_label=1,
                 sample_weight=None) -> dict:
        if average not in _AVERAGES:
            raise QuantbenchError(f"{self._key}: average={average!r} is not one of {', '.join(_AVERAGES)}")
        # zero_division=0: a class that is never predicted scores 0 instead of a warning.
        value = self._fn(references, predictions, average=average, labels=labels, pos_label=pos_label,
                         sample_weight=sample_weight, zero_division=0)
        return {self._key: float(value)}


class F1(_Averaged):
    """F1 score (``sklearn.metrics.f1_score``), macro-averaged by default."""

    _description = "F1: harmonic mean of precision and recall, averaged over classes (macro by default)."
    _key = "f1"
    _fn = staticmethod(skm.f1_score)


class Precision(_Averaged):
    """Precision (``sklearn.metrics.precision_score``), macro-averaged by default."""

    _description = "Precision averaged over classes (macro by default)."
    _key = "precision"
    _fn = staticmethod(skm.precision_score)


class Recall(_Averaged):
    """Recall (``sklearn.metrics.recall_score``), macro-averaged by default."""

    _description = "Recall averaged over classes (macro by default)."
    _key = "recall"
    _fn = staticmethod(skm.recall_score)


#: Names that never touch the Hub.
BUILTIN_METRICS: dict[str, type[_SklearnMetric]] = {
    "accuracy": Accuracy,
    "f1": F1,
    "precision": Precision,
    "recall": Recall,
}


def load_metric(name_or_path: str, **kwargs: Any) -> evaluate.EvaluationModule:
    """Our metric for a built-in name; otherwise ``evaluate.load(name_or_path)``.

    A Hub id needs the network (or a warm cache); a local ``.py`` script or folder works
    offline. Any failure becomes a one-line :class:`QuantbenchError` naming the metric.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise QuantbenchError(f"metric name must be a non-empty string, got {name_or_path!r}")
    builtin = BUILTIN_METRICS.get(name_or_path.strip().lower())
    if builtin is not None:
        return builtin(**kwargs)
    try:
        return evaluate.load(name_or_path, **kwargs)
    except Exception as exc:  # evaluate raises FileNotFoundError, ConnectionError, ImportError...
        offline = os.environ.get("HF_HUB_OFFLINE") not in (None, "", "0") or os.environ.get(
            "HF_EVALUATE_OFFLINE"
        ) not in (None, "", "0")
        hint = " (offline: use a built-in name or a local script path)" if offline else ""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise QuantbenchError(
            f"metric {name_or_path!r} could not be loaded{hint}; built-in metrics: "
            f"{', '.join(BUILTIN_METRICS)}. Reason: {reason}"
        ) from None


def _labels(values: Iterable, what: str) -> list[int]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise QuantbenchError(f"{what}: expected a 1-d sequence of class ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise QuantbenchError(f"{what}: class ids must be integers, got dtype {arr.dtype} (e.g. {arr[0]!r})")
    return [int(x) for x in arr]


def _same_length(a: Sequence, b: Sequence, a_name: str, b_name: str) -> None:
    if len(a) != len(b):
        raise QuantbenchError(f"{a_name} has {len(a)} items but {b_name} has {len(b)}")
    if len(a) == 0:
        raise QuantbenchError(f"{a_name} and {b_name} are empty")


def classification_scores(references: Iterable[int], predictions: Iterable[int], *,
                          metrics: Sequence[str] = ("accuracy", "f1", "precision", "recall"),
                          average: str = "macro") -> dict[str, float]:
    """Accuracy and averaged scores as flat floats.

    Built-in keys: ``accuracy``, ``f1_<average>``, ``precision_<average>``,
    ``recall_<average>`` (``f1_macro`` ... by default, the names in :data:`quantbench.results.METRICS`).
    Other metric names are loaded with :func:`load_metric` and their numeric outputs kept
    under their own keys.
    """
    refs = _labels(references, "references")
    preds = _labels(predictions, "predictions")
    _same_length(preds, refs, "predictions", "references")
    scores: dict[str, float] = {}
    for name in metrics:
        module = load_metric(name)
        averaged = isinstance(module, _Averaged)
        kwargs = {"average": average} if averaged else {}
        try:
            out = module.compute(predictions=preds, references=refs, **kwargs)
        except QuantbenchError:
            raise
        except Exception as exc:
            raise QuantbenchError(f"metric {name!r} failed: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        for key, value in (out or {}).items():
            key = f"{key}_{average}" if averaged else key
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
                if key in scores:
                    raise QuantbenchError(f"metric {name!r} returns {key!r}, which another metric already set")
                scores[key] = float(value)
    return scores


def agreement(pred: Iterable[int], ref_pred: Iterable[int]) -> float:
    """Share of predictions identical to the reference variant's (fp32) predictions."""
    a = _labels(pred, "pred")
    b = _labels(ref_pred, "ref_pred")
    _same_length(a, b, "pred", "ref_pred")
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def mean_abs_prob_diff(probs, ref_probs) -> float:
    """Mean over samples and classes of ``|p - p_fp32|`` (probabilities, shape (n, k) or (n,))."""
    a = np.asarray(probs, dtype=np.float64)
    b = np.asarray(ref_probs, dtype=np.float64)
    if a.shape != b.shape:
        raise QuantbenchError(f"probs has shape {a.shape} but ref_probs has shape {b.shape}")
    if a.size == 0:
        raise QuantbenchError("probs and ref_probs are empty")
    for arr, what in ((a, "probs"), (b, "ref_probs")):
        if not np.all(np.isfinite(arr)):
            raise QuantbenchError(f"{what} contains NaN or infinite values")
    return float(np.mean(np.abs(a - b)))


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value):
        raise QuantbenchError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def accuracy_delta_pts(acc: float, fp32_acc: float) -> float:
    """Accuracy minus fp32 accuracy in percentage points (0.91 vs 0.93 -> -2.0)."""
    return 100.0 * (_finite(acc, "acc") - _finite(fp32_acc, "fp32_acc"))


def keeps_99pct(acc: float, fp32_acc: float, *, ratio: float = 0.99) -> bool:
    """MLPerf's closed-division rule: the quantized model keeps >= 99 % of fp32 accuracy.

    A 1e-12 tolerance absorbs float rounding (0.99 * 0.9 is 0.8910000000000001).
    """
    return _finite(acc, "acc") >= _finite(ratio, "ratio") * _finite(fp32_acc, "fp32_acc") - 1e-12
