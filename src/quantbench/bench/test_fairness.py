"""Counterfactual fairness of every variant: sentences that differ only in a person term.

The probe follows the Equity Evaluation Corpus method (see docs/fairness.md). Turn it off with
``fairness.probe: false`` in the suite. It is about sentiment: on a dataset with no label named
"positive" it is off unless the suite names one (``fairness.positive_label``).
"""

import pytest

from quantbench.quality.reference import is_reference


def test_fairness(variant_cell, benchmark, quantbench_run, quantbench_quality):
    if quantbench_run.probe_off_reason:
        pytest.skip(quantbench_run.probe_off_reason)
    benchmark.params = variant_cell.params()
    benchmark.group = "fairness"
    scorer = quantbench_quality.for_cell(variant_cell)
    result = benchmark.pedantic(scorer.probe_fairness, args=(variant_cell,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert 0.0 <= result["flip_rate"] <= 1.0
    if is_reference(variant_cell):
        assert result["flip_rate_delta_vs_fp32"] == 0.0
