"""Language-model quality of every generation variant, against its fp32 variant.

Perplexity and bits per byte on held-out text, KL divergence and top-1 agreement of the
next-token distributions, and greedy continuation agreement (see
quantbench/tasks/generation/scoring.py for the windowing). One benchmark per variant; its
timing is one scoring pass.
"""

from quantbench.quality.reference import is_reference


def test_perplexity(lm_variant_cell, benchmark, quantbench_quality):
    benchmark.params = lm_variant_cell.params()
    benchmark.group = "lm-quality"
    scorer = quantbench_quality.for_cell(lm_variant_cell)
    result = benchmark.pedantic(scorer.lm_quality, args=(lm_variant_cell,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    assert result["perplexity"] >= 1.0
    assert 0.0 <= result["top1_agreement"] <= 1.0
    assert result["kl_divergence"] >= 0.0
    if is_reference(lm_variant_cell):
        assert result["continuation_agreement"] == 1.0
