"""lm-evaluation-harness tasks on every generation variant (the suite's ``quality.lm_eval``).

Each variant is scored as the ``quantbench`` lm-eval model (quantbench/lmeval/model.py): the
same build its timed cells ran, its log-likelihoods through the batch-invariant scoring path.
The record holds lm-eval's figures with lm-eval's stderr, their paired change against fp32, and
lm-eval's results JSON. Its timing is the whole lm-eval pass for the variant.
"""

import importlib.util

import pytest

from quantbench.quality.reference import is_reference


def test_lm_eval(lm_eval_cell, benchmark, quantbench_lm_eval):
    if importlib.util.find_spec("lm_eval") is None:
        pytest.skip("lm-eval is not installed: pip install 'quantbench[lmeval]'")
    benchmark.params = lm_eval_cell.params()
    benchmark.group = "lm-eval"
    result = benchmark.pedantic(quantbench_lm_eval.evaluate, args=(lm_eval_cell,), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    scored = [name for name in result if name.startswith("lm_eval.") and not name.endswith(("_se", "_ci95"))]
    assert scored, f"lm-eval returned no figure for {lm_eval_cell.variant_id}"
    if is_reference(lm_eval_cell):
        assert all(result[name] == 0.0 for name in scored if name.endswith("_delta"))
