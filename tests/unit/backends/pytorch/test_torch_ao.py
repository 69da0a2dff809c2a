"""torch.ao's dynamic int8: built without torch's deprecation noise, and skipped with the reason on a
torch that no longer ships it (torch_ao.py has the measurement that kept it)."""

from __future__ import annotations

import warnings

import pytest
import torch

from quantbench import registry
from quantbench.backends.pytorch import torch_ao
from quantbench.cells import expand
from tests.unit.test_cells import suite


def test_quantize_dynamic_quantizes_every_linear_and_says_nothing():
    model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = torch_ao.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    assert sum(isinstance(m, DynamicLinear) for m in quantized.modules()) == 2
    assert [str(w.message) for w in caught] == []
    # Silenced only around the call: the filters do not leak into the rest of the process.
    with pytest.warns(DeprecationWarning, match="torch.ao.quantization is deprecated"):
        torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def test_a_torch_without_quantize_dynamic_skips_the_method_with_the_reason(monkeypatch):
    assert registry.recipe("dynamic_int8", "pytorch").missing_dependency() is None
    monkeypatch.delattr(torch.ao.quantization, "quantize_dynamic")
    reason = registry.recipe("dynamic_int8", "pytorch").missing_dependency()
    assert reason == (f"dynamic_int8 on pytorch: torch {torch.__version__} no longer ships "
                      "torch.ao.quantization.quantize_dynamic; torchao's int8dq is its successor (--quant int8dq)")
    planned = {p.cell.quant: p.skip_reason for p in expand(suite(quantization=["fp32", "dynamic_int8"],
                                                                 backends=["pytorch"], batch_sizes=[1]))}
    assert planned == {"fp32": None, "dynamic_int8": reason}
