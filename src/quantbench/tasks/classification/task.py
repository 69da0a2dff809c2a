"""Text classification: a sequence classifier on labelled text (the embedded MiniLM sentiment model).

A cell's inputs are ``batch_size`` held-out texts padded to ``seq_len`` tokens; the timed call is
one forward pass; quality is accuracy and fairness of the predicted labels (quality.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.tasks import CLASSIFICATION
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

    def predict(self, variant, tokenizer, texts: list[str], cell, *, mode: str, batch_size: int,
                progress: bool = True) -> np.ndarray:
        """Logits for ``texts``, in input order, with texts grouped into passes as ``mode`` says
        (quality/batching.py: alone, exact-length buckets, or served batches padded to the longest)."""
        import torch
        from tqdm.auto import tqdm

        from quantbench.quality import batching

        encoded = tokenizer(texts, truncation=True, max_length=cell.seq_len)
        lengths = [len(ids) for ids in encoded["input_ids"]]
        passes = batching.batches(lengths, mode, batch_size)
        logits = np.empty((len(texts), 0), dtype=np.float32)
        with torch.inference_mode():
            for index in tqdm(passes, desc=f"evaluate {cell.variant_id}", unit="batch", disable=not progress,
                              leave=False):
                features = [{key: encoded[key][i] for key in encoded} for i in index]
                batch = variant.logits(dict(tokenizer.pad(features, return_tensors="np")))
                if logits.shape[1] == 0:
                    logits = np.empty((len(texts), batch.shape[1]), dtype=np.float32)
                logits[index] = batch
        return logits


TASK = TextClassification(name=CLASSIFICATION, auto_class="AutoModelForSequenceClassification",
                          ort_class="ORTModelForSequenceClassification",
                          architecture_suffixes=("ForSequenceClassification",), pipeline_tag="text-classification",
                          cell_runner="quantbench.tasks.classification.cell:measure_latency",
                          quality_class="quantbench.tasks.classification.quality:ClassificationQuality")
