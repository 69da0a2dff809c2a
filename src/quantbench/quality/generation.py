"""A causal LM's quality: perplexity, KL and agreement against fp32, and zero-shot classification.

Accuracy, data fairness and the counterfactual probe are the shared ones
(:class:`~quantbench.quality.scorer.VariantQuality`), scored from label-word likelihoods on the
suite's first ``quality.zero_shot_texts`` test texts and a seeded sample of probe pairs.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from quantbench.cells import Cell
from quantbench.errors import QuantbenchError
from quantbench.quality import batching, intervals
from quantbench.quality import lm_scoring as scoring
from quantbench.quality.reference import is_reference
from quantbench.quality.scorer import VariantQuality
from quantbench.quality.zero_shot import calibrated_scores, prompting_for


class GenerationQuality(VariantQuality):
    def __init__(self, run, pool):
        super().__init__(run, pool)
        self._fp32_logprobs: dict[tuple, list[np.ndarray]] = {}  # fp32 next-token log-probs per text, for the KL
        self._zero_shot: dict[tuple, dict[str, Any]] = {}  # variant key -> what its calibration found

    @functools.cached_property
    def _probe_sample(self):
        """The probe as generation models score it: all pairs, or the suite's seeded sample."""
        from quantbench.probe import subset_pairs

        return subset_pairs(self.run.probe, self.run.suite.quality.probe_pairs)

    def probe_for(self, cell: Cell):
        return self._probe_sample

    def eval_split(self, cell: Cell):
        """The first ``zero_shot_texts`` of the test split."""
        test = self.run.splits.test
        n = self.run.suite.quality.zero_shot_texts
        if len(test) <= n:
            return test
        return dataclasses.replace(test, texts=test.texts[:n], labels=test.labels[:n],
                                   sensitive={k: v[:n] for k, v in test.sensitive.items()})

    def class_scores(self, cell: Cell, variant, texts: list[str], *, mode: str, batch_size: int) -> np.ndarray:
        # Zero-shot: calibrated label-word log-probabilities act as logits (zero_shot.py).
        scores, facts = calibrated_scores(variant, self.run.tokenizer(cell.model), texts,
                                          list(self.run.splits.label_names), batch_size=batch_size,
                                          max_len=cell.seq_len, mode=mode)
        self._zero_shot.setdefault(cell.variant_key, facts)
        return scores

    def scoring(self, cell: Cell) -> dict[str, Any]:
        return {"scoring": "zero-shot label-word log-likelihood, calibrated",
                **prompting_for(self.run.tokenizer(cell.model)).describe(),
                **self._zero_shot.get(cell.variant_key, {})}

    def accuracy(self, cell: Cell) -> dict[str, Any]:
        """The shared figures, plus whether zero-shot is at the majority floor (flagged, not ranked)."""
        result = super().accuracy(cell)
        result["zero_shot_at_floor"] = intervals.at_floor(result, len(self.run.splits.label_names))
        return result

    def batch_sensitivity(self, cell: Cell, test, alone) -> dict[str, Any]:
        return {}  # a generation model's batch sensitivity is measured on perplexity (lm_quality)

    # -- language-model quality ------------------------------------------------------------------

    def lm_quality(self, cell: Cell) -> dict[str, Any]:
        """Perplexity and bits per byte; against fp32: the divergence statistics and continuation
        agreement; and perplexity in served batches of each suite batch size."""
        quality = self.run.suite.quality
        texts = self.run.splits.test.texts[:quality.texts]
        tokenizer = self.run.tokenizer(cell.model)
        ref_cell = self.reference_cell(cell)
        reference = self._lm_reference(ref_cell, texts)
        variant = self.variant(cell)
        mode = batching.default_mode(cell)
        if is_reference(cell):
            scores, tokens = reference
        else:
            scores = scoring.score_texts(variant, tokenizer, texts, batch_size=cell.batch_size, max_len=cell.seq_len,
                                         mode=mode, reference=self._fp32_logprobs[ref_cell.variant_key])
            tokens = self._continuations(cell, variant)
        if not np.all(np.isfinite(scores.token_nll)):
            raise QuantbenchError(f"{cell.variant_id}: the log-likelihood of the held-out text is NaN or Inf")
        divergence = (scoring.reference_divergence(scores) if is_reference(cell)
                      else scoring.divergence_figures(scores, reference[0]))
        figures = {"cell_id": cell.id, "dataset": cell.dataset,
                   "quality_scoring": batching.describe(cell, mode, cell.batch_size),
                   **scoring.perplexity_figures(scores), **divergence,
                   **scoring.continuation_agreement(tokens, reference[1])}
        if batching.measures_sensitivity(cell, self.run.suite, self._sensitive_groups):
            for size in sorted({b for b in self.run.suite.batch_sizes if b > 1}):
                served = scoring.score_texts(variant, tokenizer, texts, batch_size=size, max_len=cell.seq_len,
                                             mode=batching.SERVED)
                figures.update(scoring.batch_shift(scores, served, size))
        return figures

    def _continuations(self, cell: Cell, variant) -> np.ndarray:
        quality = self.run.suite.quality
        prompts = scoring.continuation_prompts(
            self.run.tokenizer(cell.model), self.run.splits.test.texts, count=quality.continuation_prompts,
            length=min(quality.continuation_prompt_tokens, cell.seq_len))
        if len(prompts) == 0:
            raise QuantbenchError(f"no test text has {quality.continuation_prompt_tokens} tokens for a continuation "
                                  "prompt; lower quality.continuation_prompt_tokens")
        return scoring.greedy_continuations(variant, prompts, new_tokens=quality.continuation_tokens,
                                            batch_size=cell.batch_size, mode=batching.default_mode(cell))

    def _lm_reference(self, ref_cell: Cell, texts: list[str]):
        """fp32's scores and continuations, computed once; its log-probs are kept for the KL."""
        key = (ref_cell.variant_key, "lm-reference")
        if key not in self._results:
            variant = self.variant(ref_cell)
            scores = scoring.score_texts(variant, self.run.tokenizer(ref_cell.model), texts,
                                         batch_size=ref_cell.batch_size, max_len=ref_cell.seq_len,
                                         mode=batching.default_mode(ref_cell), keep_logprobs=True)
            self._fp32_logprobs[ref_cell.variant_key] = scoring.reference_logprobs(scores)
            scores.logprobs = []
            self._results[key] = (scores, self._continuations(ref_cell, variant))
        return self._results[key]
