"""Text classification: a sequence classifier on labelled text (the embedded MiniLM sentiment model).

A cell's inputs are ``batch_size`` held-out texts padded to ``seq_len`` tokens; the timed call is
one forward pass. Quality (accuracy and fairness of the predicted labels) is scored by
:mod:`quantbench.quality.classification`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.task_kinds import CLASSIFICATION
from quantbench.tasks.base import Task


class TextClassification(Task):
    def texts_for(self, splits, cell) -> list[str]:
        """``batch_size`` evaluation texts (cycled if the split is smaller)."""
        texts = splits.test.texts
        return [texts[i % len(texts)] for i in range(cell.batch_size)]

    def encode(self, tokenizer, texts: list[str], seq_len: int, *, fixed: bool = True) -> dict[str, np.ndarray]:
        """Tokenize to numpy; ``fixed`` pads every row to ``seq_len`` so the shape is the cell's."""
        encoded = tokenizer(texts, padding="max_length" if fixed else True, truncation=True, max_length=seq_len,
                            return_tensors="np")
        return dict(encoded)

    def cell_inputs(self, splits, tokenizer, cell) -> dict[str, np.ndarray]:
        return self.encode(tokenizer, self.texts_for(splits, cell), cell.seq_len)

    def run_once(self, variant, inputs: Any, cell) -> Any:
        """The timed call: one forward pass (plus a device synchronize)."""
        out = variant.forward(inputs)
        variant.synchronize()
        return out


TASK = TextClassification(name=CLASSIFICATION)
