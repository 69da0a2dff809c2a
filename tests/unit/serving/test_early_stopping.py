"""What a Server verdict judges (serving/early_stopping.py): LoadGen's early-stopping bound."""

from __future__ import annotations

import pytest

from quantbench.serving.early_stopping import judged_label, passes, point_figures, queries_needed, share_upper_bound
from quantbench.serving.search import judged_slo_text
from quantbench.suite.serving import early_stopping_queries


@pytest.mark.parametrize(("over", "percentile", "needed"), [(0, 0.99, 459), (1, 0.99, 662), (0, 0.9, 44), (1, 0.9, 64)])
def test_queries_needed_match_loadgen_early_stopping(over, percentile, needed):
    assert queries_needed(over, percentile) == needed
    assert passes(needed, over, percentile) and not passes(needed - 1, over, percentile)
    if over == 0:  # the suite's minimum per point is the same count
        assert early_stopping_queries(percentile) == needed


def test_a_point_near_the_minimum_passes_only_with_no_query_over_the_bound():
    # 600 queries at p99: the empirical p99 may sit under the bound with 5 queries over it, yet LoadGen's
    # verdict needs at most 0 of them (662 would allow one): the verdict is on an upper bound.
    assert passes(600, 0, 0.99) and not passes(600, 1, 0.99)
    figures = point_figures(600, 1, 0.99)
    assert figures["over_bound_share"] == pytest.approx(1 / 600, abs=1e-5)
    assert figures["over_bound_share_upper"] > figures["over_bound_allowed"] == 0.01
    assert figures["judged"] == judged_label(0.99) == "p99 upper bound (LoadGen early stopping, 99% confidence)"
    assert share_upper_bound(459, 0) == pytest.approx(0.00998, abs=1e-5)
    assert point_figures(None, None, 0.99) == {}


def test_the_slo_label_names_the_bound_it_judges():
    assert judged_slo_text({"latency": 25.0}, 0.99) == "p99 upper bound ≤ 25 ms (LoadGen early stopping, 99% confidence)"
    assert judged_slo_text({"ttft": 500.0, "tpot": 50.0}, 0.9) == (
        "TTFT p90 upper bound ≤ 500 ms and TPOT p90 upper bound ≤ 50 ms (LoadGen early stopping, 99% confidence)")
