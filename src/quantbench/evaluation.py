"""Accuracy and fairness of one variant, measured against its fp32 reference.

Every variant is scored on the same held-out examples (the test split) and the same probe
sentences. Predictions are kept per variant for the run, so each quantized variant is
compared with the fp32 variant of the same model and backend without evaluating it twice.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantbench import fairness, metrics
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.pool import VariantPool


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


class Evaluator:
    """Holds the run's predictions: (variant key, data name) -> Predictions."""

    def __init__(self, pool: VariantPool):
        self.pool = pool
        self._store: dict[tuple, Predictions] = {}
        self._results: dict[tuple, dict[str, Any]] = {}
        self._fp32_logprobs: dict[tuple, np.ndarray] = {}  # LLM fp32 next-token log-probs, for the KL

    @functools.cached_property
    def probe(self):
        from quantbench.probe import load_probe

        return load_probe(self.pool.suite.fairness.get("probe_path"))

    @functools.cached_property
    def lm_probe(self):
        """The probe as generation models score it: all pairs, or the suite's seeded sample."""
        from quantbench.probe import subset_pairs

        return subset_pairs(self.probe, self.pool.suite.quality.probe_pairs)

    def probe_for(self, cell: Cell):
        return self.lm_probe if cell.is_generation else self.probe

    def eval_split(self, cell: Cell):
        """The held-out split a variant is scored on: for an LLM, its first ``zero_shot_texts``."""
        test = self.pool.splits.test
        if not cell.is_generation or len(test) <= self.pool.suite.quality.zero_shot_texts:
            return test
        n = self.pool.suite.quality.zero_shot_texts
        return dataclasses.replace(test, texts=test.texts[:n], labels=test.labels[:n],
                                   sensitive={k: v[:n] for k, v in test.sensitive.items()})

    def _logits(self, cell: Cell, texts: list[str]) -> np.ndarray:
        variant = self.pool.get(cell).variant
        tokenizer = self.pool.tokenizer(cell.model)
        if cell.is_generation:
            # Zero-shot: label-word log-likelihoods act as logits (their softmax is the class probability).
            from quantbench.lm_quality import label_logliks

            return label_logliks(variant, tokenizer, texts, list(self.pool.splits.label_names),
                                 batch_size=cell.batch_size, max_len=cell.seq_len)
        return self.pool.task(cell.model).predict(variant, tokenizer, texts, cell)

    def predictions(self, cell: Cell, data: str) -> Predictions:
        key = (cell.variant_key, data)
        if key not in self._store:
            texts = self.eval_split(cell).texts if data == "test" else self.probe_for(cell).texts
            logits = self._logits(cell, texts)
            if not np.all(np.isfinite(logits)):
                raise QuantbenchError(f"{cell.variant_id}: NaN or Inf logits on the {data} data")
            self._store[key] = Predictions(logits)
        return self._store[key]

    def reference_cell(self, cell: Cell) -> Cell:
        """fp32 of the same model, backend and device (the same shapes)."""
        return dataclasses.replace(cell, quant="fp32")

    def _check_labels(self, cell: Cell, preds: Predictions) -> None:
        n_model = preds.logits.shape[1]
        names = self.pool.splits.label_names
        if len(names) > n_model:
            raise QuantbenchError(f"{cell.variant_id}: the dataset has labels {list(names)} but the model has only "
                                  f"{n_model} output classes")

    # -- accuracy ---------------------------------------------------------------------

    def accuracy(self, cell: Cell) -> dict[str, Any]:
        test = self.eval_split(cell)
        ref_cell = self.reference_cell(cell)
        # The reference first, so building it does not evict the variant under test mid-way.
        ref = self.predictions(ref_cell, "test")
        preds = self.predictions(cell, "test")
        self._check_labels(cell, preds)
        names = self.pool.suite.metrics
        scores = metrics.classification_scores(test.labels, preds.labels, metrics=names)
        ref_scores = self._results.get((ref_cell.variant_key, "accuracy")) or \
            metrics.classification_scores(test.labels, ref.labels, metrics=names)
        result: dict[str, Any] = {
            "cell_id": cell.id, "dataset": cell.dataset, "n_examples": len(test),
            "eval_batch_size": cell.batch_size, "eval_max_seq_len": cell.seq_len,
            "test_fingerprint": test.fingerprint(),
            **{k: round(v, 6) for k, v in scores.items()},
            "fp32_accuracy": round(ref_scores["accuracy"], 6),
            "agreement_with_fp32": round(metrics.agreement(preds.labels, ref.labels), 6),
            "mean_abs_prob_diff": round(metrics.mean_abs_prob_diff(preds.probs, ref.probs), 6),
            "accuracy_delta_pts": round(metrics.accuracy_delta_pts(scores["accuracy"], ref_scores["accuracy"]), 4),
            "keeps_99pct_accuracy": metrics.keeps_99pct(scores["accuracy"], ref_scores["accuracy"]),
            **self._scoring(cell),
        }
        if test.sensitive:
            result.update(self._data_fairness(cell, test, preds, ref))
        self._results[(cell.variant_key, "accuracy")] = scores
        return result

    def _data_fairness(self, cell: Cell, test, preds: Predictions, ref: Predictions) -> dict[str, Any]:
        positive = self.positive_label()
        try:
            current = fairness.group_fairness(test.labels, preds.labels, test.sensitive, positive_label=positive)
            reference = fairness.group_fairness(test.labels, ref.labels, test.sensitive, positive_label=positive)
        except QuantbenchError as exc:
            # e.g. a single-group column: the accuracy figures stand, the reason is recorded and shown.
            warnings.warn(f"quantbench: {cell.variant_id}: group fairness not computed: {exc}", stacklevel=2)
            return {"fairness_data": {"error": str(exc)}}
        first = next(iter(current))
        return {
            "fairness_data": {"by_attribute": current, "delta_vs_fp32": fairness.fairness_deltas(current, reference)},
            "data_dp_difference": current[first]["dp_difference"],
            "data_eo_difference": current[first]["eo_difference"],
            "data_worst_group_accuracy": current[first]["worst_group_accuracy"],
        }

    # -- counterfactual probe -----------------------------------------------------------

    def positive_label(self) -> int:
        names = list(self.pool.splits.label_names)
        if "positive" not in names:
            raise QuantbenchError(f"the fairness probe needs a 'positive' label; the dataset's labels are {names} "
                                  "(turn the probe off with fairness.probe: false)")
        return names.index("positive")

    def probe_fairness(self, cell: Cell) -> dict[str, Any]:
        from quantbench.probe import analyze_probe

        names = list(self.pool.splits.label_names)
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
            "cell_id": cell.id, "probe_sentences": current["n_sentences"], **self._scoring(cell), **summary,
            **{f"{k}_delta_vs_fp32": (None if v is None or reference[k] is None else round(v - reference[k], 6))
               for k, v in summary.items()},
            "fairness": {"probe": {**current, "by_group": by_group,
                                   "delta_vs_fp32": fairness.fairness_deltas(current, reference)}},
        }

    def _scoring(self, cell: Cell) -> dict[str, Any]:
        if not cell.is_generation:
            return {}
        from quantbench.lm_quality import ZERO_SHOT_TEMPLATE

        return {"scoring": "zero-shot label-word log-likelihood", "zero_shot_template": ZERO_SHOT_TEMPLATE,
                "label_words": [f" {name}" for name in self.pool.splits.label_names]}

    # -- language-model quality (generation models) --------------------------------------

    def lm_quality(self, cell: Cell) -> dict[str, Any]:
        """Perplexity and bits per byte; against fp32: ΔPPL, KL, top-1 and continuation agreement."""
        from quantbench import lm_quality

        quality = self.pool.suite.quality
        texts = self.pool.splits.test.texts[:quality.texts]
        tokenizer = self.pool.tokenizer(cell.model)
        ref_cell = self.reference_cell(cell)
        reference = self._lm_reference(ref_cell, texts)
        variant = self.pool.get(cell).variant
        if cell.quant == "fp32":
            scores, tokens = reference
        else:
            scores = lm_quality.score_texts(variant, tokenizer, texts, batch_size=cell.batch_size,
                                            max_len=cell.seq_len, reference=self._fp32_logprobs[ref_cell.variant_key])
            tokens = self._continuations(cell, variant)
        if not np.isfinite(scores.nll):
            raise QuantbenchError(f"{cell.variant_id}: the log-likelihood of the held-out text is NaN or Inf")
        if cell.quant == "fp32":  # the reference itself: its deltas are zero by definition
            figures = {**lm_quality.quality_figures(scores, None), "fp32_perplexity": round(scores.perplexity, 4),
                       "perplexity_delta_pct": 0.0, "kl_divergence": 0.0, "kl_divergence_p99": 0.0,
                       "top1_agreement": 1.0}
        else:
            figures = lm_quality.quality_figures(scores, reference[0])
        return {"cell_id": cell.id, "dataset": cell.dataset, **figures,
                **lm_quality.continuation_agreement(tokens, reference[1])}

    def _continuations(self, cell: Cell, variant) -> np.ndarray:
        from quantbench import lm_quality

        quality = self.pool.suite.quality
        prompts = lm_quality.continuation_prompts(
            self.pool.tokenizer(cell.model), self.pool.splits.test.texts, count=quality.continuation_prompts,
            length=min(quality.continuation_prompt_tokens, cell.seq_len))
        if len(prompts) == 0:
            raise QuantbenchError(f"no test text has {quality.continuation_prompt_tokens} tokens for a continuation "
                                  "prompt; lower quality.continuation_prompt_tokens")
        return lm_quality.greedy_continuations(variant, prompts, new_tokens=quality.continuation_tokens,
                                               batch_size=cell.batch_size)

    def _lm_reference(self, ref_cell: Cell, texts: list[str]):
        """fp32's scores and continuations, computed once; its log-probs are kept for the KL."""
        from quantbench import lm_quality

        key = (ref_cell.variant_key, "lm-reference")
        if key not in self._results:
            variant = self.pool.get(ref_cell).variant
            scores = lm_quality.score_texts(variant, self.pool.tokenizer(ref_cell.model), texts,
                                            batch_size=ref_cell.batch_size, max_len=ref_cell.seq_len,
                                            keep_logprobs=True)
            self._fp32_logprobs[ref_cell.variant_key] = lm_quality.reference_logprobs(scores)
            scores.logprobs = []
            self._results[key] = (scores, self._continuations(ref_cell, variant))
        return self._results[key]
