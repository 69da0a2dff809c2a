"""Axis ticks (reports/charts.py ``nice_ticks``), shared by the run report and the trend page."""

from __future__ import annotations

import pytest

from quantbench.reports.charts import nice_ticks


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (3.2, 97.5), (-0.05, 0.02), (1e-12, 3e-12), (5.0, 5.0),
                                    # one stored value read back twice, apart by float rounding only: the
                                    # trend page of ten real runs looped here until memory ran out
                                    (21.96, 21.96 + 1e-13), (64.37, 64.37000000000001)])
def test_ticks_are_round_increasing_and_cover_the_range(lo, hi):
    ticks = nice_ticks(lo, hi)
    assert 2 <= len(ticks) <= 12
    assert ticks[0] <= lo and ticks[-1] >= hi
    assert all(b > a for a, b in zip(ticks, ticks[1:]))


def test_ticks_keep_their_round_values():
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(3.2, 97.5) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
