"""A classifier's quality: accuracy, data fairness and the probe, scored on its own logits."""

from __future__ import annotations

import numpy as np

from quantbench.cells import Cell
from quantbench.quality.scorer import VariantQuality
from quantbench.tasks.classification.task import TASK


class ClassificationQuality(VariantQuality):
    def class_scores(self, cell: Cell, variant, texts: list[str], *, mode: str, batch_size: int) -> np.ndarray:
        return TASK.predict(variant, self.run.tokenizer(cell.model), texts, cell, mode=mode, batch_size=batch_size)
