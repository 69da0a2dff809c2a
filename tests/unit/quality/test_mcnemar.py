"""McNemar's exact test on paired right/wrong outcomes: the textbook p-values of constructed tables."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from quantbench.quality.mcnemar import mcnemar_exact


def table(both: int, gained: int, lost: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcome vectors with these four cells: (right, right), (right, wrong), (wrong, right), (wrong, wrong)."""
    mine = [1] * both + [1] * gained + [0] * lost + [0] * neither
    ref = [1] * both + [0] * gained + [1] * lost + [0] * neither
    return np.asarray(mine), np.asarray(ref)


def test_the_p_value_is_the_two_sided_binomial_on_the_discordant_documents_only():
    # 9 gained, 2 lost: p = 2 x P(X <= 2 | n=11, 1/2) = 2 x (1 + 11 + 55) / 2048 = 134 / 2048.
    test = mcnemar_exact(*table(both=500, gained=9, lost=2, neither=300))
    assert (test.gained, test.lost, test.discordant) == (9, 2, 11)
    assert test.p_value == pytest.approx(134 / 2048, rel=1e-12)
    # The concordant cells carry no evidence: any number of them leaves p unchanged.
    assert mcnemar_exact(*table(both=3, gained=9, lost=2, neither=0)).p_value == test.p_value
    # Symmetric in which side gained.
    assert mcnemar_exact(*table(both=0, gained=2, lost=9, neither=0)).p_value == test.p_value


@pytest.mark.parametrize(("gained", "lost", "expected"), [
    (10, 0, 2 / 2**10),                                # all discordant one way: 2 x (1/2)^10
    (5, 5, 1.0),                                       # balanced: no evidence at all
    (30, 12, 2 * sum(comb(42, k) for k in range(13)) / 2**42),
])
def test_known_tables(gained, lost, expected):
    assert mcnemar_exact(*table(both=40, gained=gained, lost=lost, neither=7)).p_value == pytest.approx(expected, rel=1e-9)


def test_identical_outcomes_have_no_discordant_document_and_p_one():
    mine, _ = table(both=5, gained=0, lost=0, neither=5)
    test = mcnemar_exact(mine, mine)
    assert (test.gained, test.lost, test.p_value) == (0, 0, 1.0)


def test_vectors_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="two equally long 1-D outcome vectors"):
        mcnemar_exact([1, 0, 1], [1, 0])
