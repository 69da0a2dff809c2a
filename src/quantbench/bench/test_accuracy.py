"""Accuracy of every variant on the held-out test split, against its fp32 reference.

One benchmark per variant (model x method x backend x device). Its timing is one pass over
the test split; its figures are in ``extra_info``.
"""

from quantbench.quality.reference import is_reference


def test_accuracy(variant_cell, benchmark, quantbench_quality):
    benchmark.params = variant_cell.params()
    benchmark.group = "accuracy"
    scorer = quantbench_quality.for_cell(variant_cell)
    result = benchmark.pedantic(scorer.accuracy, args=(variant_cell,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert 0.0 <= result["accuracy"] <= 1.0
    if is_reference(variant_cell):
        assert result["agreement_with_fp32"] == 1.0
