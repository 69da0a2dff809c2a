"""A classifier's quality: accuracy, data fairness and the probe, scored on its own logits."""

from __future__ import annotations

import numpy as np

from quantbench.cells import Cell
from quantbench.quality import batching
from quantbench.quality.scorer import VariantQuality


def predict(variant, tokenizer, texts: list[str], cell, *, mode: str, batch_size: int,
            progress: bool = True) -> np.ndarray:
    """Logits for ``texts``, in input order, with texts grouped into passes as ``mode`` says
    (quality/batching.py: alone, exact-length buckets, or served batches padded to the longest)."""
    import torch
    from tqdm.auto import tqdm

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


class ClassificationQuality(VariantQuality):
    def class_scores(self, cell: Cell, variant, texts: list[str], *, mode: str, batch_size: int) -> np.ndarray:
        return predict(variant, self.run.tokenizer(cell.model), texts, cell, mode=mode, batch_size=batch_size)
