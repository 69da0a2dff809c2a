"""McNemar's exact test: do two models scored on the same documents differ in accuracy?

Paired right/wrong outcomes on the same documents are a 2 x 2 table. Documents both get right,
or both get wrong, say nothing about which model is better; only the discordant ones do:
``gained`` (this model right, the reference wrong) and ``lost`` (the reverse). Under "no
difference" each discordant document is a fair coin, so ``gained`` is Binomial(gained + lost, 1/2)
and the two-sided exact p-value is scipy's ``binomtest``. It stays exact at a handful of
discordant documents, where the normal interval of the mean difference does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class McNemar:
    gained: int  # right here, wrong in the reference
    lost: int  # wrong here, right in the reference
    p_value: float  # two-sided, exact; 1.0 when no document is discordant

    @property
    def discordant(self) -> int:
        return self.gained + self.lost


def mcnemar_exact(correct, reference_correct) -> McNemar:
    """The exact McNemar test of paired right/wrong outcomes (truthy = right), document by document."""
    from scipy.stats import binomtest

    mine, ref = np.asarray(correct, dtype=bool), np.asarray(reference_correct, dtype=bool)
    if mine.shape != ref.shape or mine.ndim != 1:
        raise ValueError(f"McNemar needs two equally long 1-D outcome vectors, got shapes {mine.shape} and {ref.shape}")
    gained, lost = int((mine & ~ref).sum()), int((~mine & ref).sum())
    if gained + lost == 0:
        return McNemar(0, 0, 1.0)
    return McNemar(gained, lost, float(binomtest(gained, gained + lost, 0.5).pvalue))
