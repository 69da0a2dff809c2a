"""A cell whose variant outputs NaN or Inf fails before it is timed."""

import numpy as np
import pytest

from quantbench.cells import Cell
from quantbench.measures.record import NonFiniteOutput, check_finite

CELL = Cell("m", "d", "nf4", "pytorch", "cpu", 8, 64)


def test_nan_or_inf_logits_fail_the_cell_with_a_count():
    with pytest.raises(NonFiniteOutput, match=r"m-d-nf4-pytorch-cpu-bs8-seq64: 2 of 4 logits are NaN or Inf"):
        check_finite(np.array([[np.nan, 1.0], [np.inf, 0.0]]), CELL)


def test_finite_logits_pass():
    check_finite(np.array([[0.1, -2.0]]), CELL)
