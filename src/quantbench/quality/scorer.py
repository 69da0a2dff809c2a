"""Accuracy and fairness of one variant, measured against its fp32 reference: what both tasks share.

Every variant is scored on the same held-out examples (the test split) and the same probe
sentences. Predictions are kept per variant for the run, so each quantized variant is
compared with the fp32 variant of the same model and backend without evaluating it twice.
A task subclasses :class:`VariantQuality` with how its model turns texts into class scores
(a classifier's logits, an LLM's label-word likelihoods) and what else it measures.
"""

from __future__ import annotations

import abc
import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.quality import batching, fairness, intervals, metrics, uncertainty
from quantbench.quality.reference import reference_cell


@dataclass(frozen=True)
class Predictions:
    logits: np.ndarray

    @functools.cached_property
    def probs(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)

    @property
    def labels(self) -> np.ndarray:
        return self.logits.argmax(axis=1)


class VariantQuality(abc.ABC):
    """Holds the run's predictions: (variant key, data name) -> Predictions.

    ``run`` is the RunContext (data, tokenizers, the probe); ``pool`` builds the variants.
    """

    def __init__(self, run, pool):
        self.run = run
        self.pool = pool
        self._store: dict[tuple, Predictions] = {}
        self._results: dict[tuple, dict[str, Any]] = {}

    @functools.cached_property
    def _sensitive_groups(self) -> frozenset:
        """Where the suite has a batch-sensitive variant (its fp32 there is the batching control)."""
        return batching.sensitive_groups(self.run.suite)

    # -- what a task says -----------------------------------------------------------------

    @abc.abstractmethod
    def class_scores(self, cell: Cell, variant, texts: list[str], *, mode: str, batch_size: int) -> np.ndarray:
        """(texts, labels) scores whose argmax is the prediction and whose softmax the probability,
        with texts grouped into forward passes as ``mode`` says (quality/batching.py)."""

    def eval_split(self, cell: Cell):
        """The held-out split a variant is scored on."""
        return self.run.splits.test

    def probe_for(self, cell: Cell):
        """The probe sentences a variant is scored on."""
        return self.run.probe

    def scoring(self, cell: Cell) -> dict[str, Any]:
        """How the class scores were made, when it needs saying (recorded beside the figures)."""
        return {}

    # -- predictions ------------------------------------------------------------------------

    def variant(self, cell: Cell):
        """``cell``'s variant from the pool (the checkpoint resolves first: the embedded model may
        fine-tune, and the pool's memory baseline must hold the variant only)."""
        res = self.run.for_cell(cell, timed=False)
        return self.pool.get(cell, res.source, res.settings).variant

    def predictions(self, cell: Cell, data: str, *, mode: str | None = None,
                    batch_size: int | None = None) -> Predictions:
        """``cell``'s predictions on the test or probe texts, scored as its method allows
        (``batching.default_mode``) unless ``mode`` asks for another grouping."""
        mode = mode or batching.default_mode(cell)
        batch_size = 1 if mode == batching.ALONE else (batch_size or cell.batch_size)
        key = (cell.variant_key, data, mode, batch_size)
        if key not in self._store:
            texts = self.eval_split(cell).texts if data == "test" else self.probe_for(cell).texts
            logits = self.class_scores(cell, self.variant(cell), texts, mode=mode, batch_size=batch_size)
            if not np.all(np.isfinite(logits)):
                raise QuantbenchError(f"{cell.variant_id}: NaN or Inf logits on the {data} data")
            self._store[key] = Predictions(logits)
        return self._store[key]

    @staticmethod
    def reference_cell(cell: Cell) -> Cell:
        """fp32 of the same model and device (the same shapes), on the same backend or on the one
        ``Runtime.quality_reference`` names for it."""
        return reference_cell(cell)

    def _check_labels(self, cell: Cell, preds: Predictions) -> None:
        n_model = preds.logits.shape[1]
        names = self.run.splits.label_names
        if len(names) > n_model:
            raise QuantbenchError(f"{cell.variant_id}: the dataset has labels {list(names)} but the model has only "
                                  f"{n_model} output classes")

    # -- accuracy ---------------------------------------------------------------------------

    def accuracy(self, cell: Cell) -> dict[str, Any]:
        test = self.eval_split(cell)
        ref_cell = self.reference_cell(cell)
        # The reference first, so building it does not evict the variant under test mid-way.
        ref = self.predictions(ref_cell, "test")
        preds = self.predictions(cell, "test")
        self._check_labels(cell, preds)
        names = self.run.suite.metrics
        scores = metrics.classification_scores(test.labels, preds.labels, metrics=names)
        ref_scores = self._results.get((ref_cell.variant_key, "accuracy")) or \
            metrics.classification_scores(test.labels, ref.labels, metrics=names)
        k = preds.logits.shape[1]
        result: dict[str, Any] = {
            "cell_id": cell.id, "dataset": cell.dataset, "n_examples": len(test),
            "eval_batch_size": cell.batch_size, "eval_max_seq_len": cell.seq_len,
            "quality_scoring": batching.describe(cell, batching.default_mode(cell), cell.batch_size),
            "test_fingerprint": test.fingerprint(),
            **{k: round(v, 6) for k, v in scores.items()},
            "fp32_accuracy": round(ref_scores["accuracy"], 6),
            "agreement_with_fp32": round(metrics.agreement(preds.labels, ref.labels), 6),
            "mean_abs_prob_diff": round(metrics.mean_abs_prob_diff(preds.probs, ref.probs), 6),
            "accuracy_delta_pts": round(metrics.accuracy_delta_pts(scores["accuracy"], ref_scores["accuracy"]), 4),
            "keeps_99pct_accuracy": metrics.keeps_99pct(scores["accuracy"], ref_scores["accuracy"]),
            **intervals.classification_intervals(test.labels, preds.labels, ref.labels, k=k,
                                                 names=list(self.run.splits.label_names), probs=preds.probs,
                                                 ref_probs=ref.probs),
            **self.scoring(cell),
        }
        if batching.measures_sensitivity(cell, self.run.suite, self._sensitive_groups):
            result.update(self.batch_sensitivity(cell, test, preds))
        if test.sensitive:
            result.update(self._data_fairness(cell, test, preds, ref))
        self._results[(cell.variant_key, "accuracy")] = scores
        return result

    def batch_sensitivity(self, cell: Cell, test, alone: Predictions) -> dict[str, Any]:
        """Accuracy when texts are scored in served batches of each suite batch size (consecutive,
        padded to the longest) against the figure above: what batching in production costs."""
        out: dict[str, Any] = {}
        correct = (alone.labels == test.labels)
        for size in sorted({b for b in self.run.suite.batch_sizes if b > 1}):
            served = self.predictions(cell, "test", mode=batching.SERVED, batch_size=size)
            served_correct = (served.labels == test.labels)
            key = f"accuracy_at_bs{size}"
            out[key] = round(float(served_correct.mean()), 6)
            out[f"{key}_ci95"] = uncertainty.wilson(int(served_correct.sum()), len(served_correct))
            out[f"{key}_delta_pts"] = round(100.0 * float(served_correct.mean() - correct.mean()), 4)
            out[f"{key}_delta_pts_ci95"] = uncertainty.bootstrap_ci(
                lambda idx: 100.0 * float(served_correct[idx].mean() - correct[idx].mean()), len(correct), digits=4)
            out[f"predictions_changed_at_bs{size}"] = int((served.labels != alone.labels).sum())
        return out

    def _data_fairness(self, cell: Cell, test, preds: Predictions, ref: Predictions) -> dict[str, Any]:
        positive, how = self.run.positive_label
        if positive is None and len(self.run.splits.label_names) == 2:
            # Binary: DP and EO are the same whichever class counts as positive, so no choice is made.
            positive, how = 1, f"{how}; binary labels: DP and EO do not depend on which class is positive"
        if positive is None:
            reason = f"group fairness needs a positive label: {how}"
            warnings.warn(f"quantbench: {cell.variant_id}: {reason}", stacklevel=2)
            return {"fairness_data": {"error": reason}}
        try:
            current = fairness.group_fairness(test.labels, preds.labels, test.sensitive, positive_label=positive)
            reference = fairness.group_fairness(test.labels, ref.labels, test.sensitive, positive_label=positive)
        except QuantbenchError as exc:
            # e.g. a single-group column: the accuracy figures stand, the reason is recorded and shown.
            warnings.warn(f"quantbench: {cell.variant_id}: group fairness not computed: {exc}", stacklevel=2)
            return {"fairness_data": {"error": str(exc)}}
        first = next(iter(current))
        gaps = fairness.gap_intervals(test.labels, preds.labels, test.sensitive[first], positive_label=positive)
        return {
            "fairness_data": {"by_attribute": current, "delta_vs_fp32": fairness.fairness_deltas(current, reference),
                              "positive_label": str(self.run.splits.label_names[positive]), "positive_label_from": how},
            "data_dp_difference": current[first]["dp_difference"],
            "data_dp_difference_ci95": gaps["dp_difference_ci95"],
            "data_eo_difference": current[first]["eo_difference"],
            "data_eo_difference_ci95": gaps["eo_difference_ci95"],
            "data_worst_group_accuracy": current[first]["worst_group_accuracy"],
            "data_worst_group_accuracy_ci95": gaps["worst_group_accuracy_ci95"],
        }

    # -- counterfactual probe -----------------------------------------------------------------

    def positive_label(self) -> int:
        """The probe's positive label; the probe does not run without one (RunContext.probe_off_reason)."""
        positive, how = self.run.positive_label
        if positive is None:
            raise QuantbenchError(f"the fairness probe needs a positive label: {how}")
        return positive

    def probe_fairness(self, cell: Cell) -> dict[str, Any]:
        from quantbench.probe import analyze_probe

        names = list(self.run.splits.label_names)
        positive = self.positive_label()
        negative = names.index("negative") if "negative" in names else 1 - positive
        ref_cell = self.reference_cell(cell)
        ref = self.predictions(ref_cell, "probe")
        preds = self.predictions(cell, "probe")
        probe = self.probe_for(cell)
        current = analyze_probe(probe, preds.probs[:, positive], preds.labels, positive_label=positive,
                                negative_label=negative)
        reference = analyze_probe(probe, ref.probs[:, positive], ref.labels, positive_label=positive,
                                  negative_label=negative)
        # A flat by_group (dimension:group) so reports can chart every group of every dimension.
        by_group = {f"{dim}:{group}": figures for dim, block in current["by_dimension"].items()
                    for group, figures in block["by_group"].items()}
        summary = {k: current[k] for k in ("flip_rate", "score_gap_mean", "score_gap_max", "dp_difference",
                                           "eo_difference", "worst_group_accuracy")}
        return {
            "cell_id": cell.id, "probe_sentences": current["n_sentences"], **self.scoring(cell), **summary,
            **{f"{k}_ci95": current.get(f"{k}_ci95") for k in summary},
            "quality_scoring": batching.describe(cell, batching.default_mode(cell), cell.batch_size),
            **{f"{k}_delta_vs_fp32": (None if v is None or reference[k] is None else round(v - reference[k], 6))
               for k, v in summary.items()},
            "fairness": {"probe": {**current, "by_group": by_group,
                                   "delta_vs_fp32": fairness.fairness_deltas(current, reference)}},
        }
