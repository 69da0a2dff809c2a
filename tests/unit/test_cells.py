"""Cells: the product minus impossible pairs and exclusions, readable ids, honest skips."""

from __future__ import annotations

import pytest

from quantbench import registry
from quantbench.cells import expand
from quantbench.errors import QuantbenchError
from quantbench.suite import parse_suite


def suite(**over):
    data = {"models": [{"name": "m"}], "quantization": ["fp32", "dynamic_int8", "static_int8", "nf4"],
            "backends": ["pytorch", "onnxruntime"], "devices": ["cpu"], "batch_sizes": [1, 8], "seq_lens": [64]}
    data.update(over)
    return parse_suite(data, where="s.yaml")


def ids(planned):
    return [p.cell.id for p in planned]


def test_impossible_pairs_are_dropped_not_skipped():
    planned = expand(suite())
    variants = {(p.cell.quant, p.cell.backend) for p in planned}
    # static_int8 exists only on onnxruntime, nf4 only on pytorch.
    assert variants == {("fp32", "pytorch"), ("dynamic_int8", "pytorch"), ("nf4", "pytorch"),
                        ("fp32", "onnxruntime"), ("dynamic_int8", "onnxruntime"), ("static_int8", "onnxruntime")}
    assert len(planned) == 12


def test_ids_are_readable_and_grouped_by_variant_fp32_first():
    planned = expand(suite(quantization=["dynamic_int8", "fp32"], backends=["pytorch"]))
    assert ids(planned) == ["m-tweets-fp32-pytorch-cpu-bs1-seq64", "m-tweets-fp32-pytorch-cpu-bs8-seq64",
                            "m-tweets-dynamic_int8-pytorch-cpu-bs1-seq64", "m-tweets-dynamic_int8-pytorch-cpu-bs8-seq64"]


def test_exclusions_and_filters():
    planned = expand(suite(exclude=[{"quant": "nf4"}, {"backend": "onnxruntime", "batch_size": 8}]),
                     {"batch_size": (8,)})
    assert ids(planned) == ["m-tweets-fp32-pytorch-cpu-bs8-seq64", "m-tweets-dynamic_int8-pytorch-cpu-bs8-seq64"]


def test_filter_outside_the_suite_is_a_clear_error():
    with pytest.raises(QuantbenchError, match=r"--quant bf16: not in suite 'suite' \(fp32, dynamic_int8"):
        expand(suite(), {"quant": ("bf16",)})
    with pytest.raises(QuantbenchError, match=r"--device tpu: unknown device; known: cpu, cuda, mps"):
        expand(suite(), {"device": ("tpu",)})


def test_missing_device_is_a_skip_with_reason_never_a_cpu_run():
    import torch

    planned = expand(suite(devices=["cpu", "cuda", "mps"], quantization=["fp32"], backends=["pytorch"]))
    by_device = {p.cell.device: p.skip_reason for p in planned}
    assert by_device["cpu"] is None
    if not torch.cuda.is_available():
        assert by_device["cuda"] == "no CUDA device (torch.cuda.is_available() is False)"
    if not torch.backends.mps.is_available():
        assert by_device["mps"] == "no MPS device (torch.backends.mps.is_available() is False)"


def test_dynamic_int8_pytorch_never_lands_on_cuda():
    planned = expand(suite(devices=["cuda"], quantization=["dynamic_int8"], backends=["pytorch"]))
    assert planned == []


def test_per_variant_cells_use_eval_shape():
    planned = expand(suite(quantization=["fp32"], backends=["pytorch"]), per_variant=True)
    assert ids(planned) == ["m-tweets-fp32-pytorch-cpu"]
    assert planned[0].cell.batch_size == 64 and planned[0].cell.seq_len == 128


def test_missing_optional_dependency_is_named(monkeypatch):
    def recipe_of(backend, requires, extra):
        runtime = registry.Runtime(name=backend, description="", methods=(), requires=requires, extra=extra)
        return registry.Recipe(registry.Method("x", "nowhere:build", ("cpu",)), runtime)

    recipe = recipe_of("pytorch", ("surely_not_installed_pkg",), "bnb")
    assert recipe.missing_dependency() == ("x on pytorch needs the optional dependency 'surely_not_installed_pkg': "
                                          "pip install 'quantbench[bnb]'")
    # A submodule of a package that is not installed (optimum.onnxruntime without optimum) is
    # missing too, not an import error.
    nested = recipe_of("onnxruntime", ("surely_not_installed_pkg.sub",), "onnx")
    assert nested.missing_dependency() == ("x on onnxruntime needs the optional dependency "
                                           "'surely_not_installed_pkg.sub': pip install 'quantbench[onnx]'")


def test_unknown_method_lists_known():
    with pytest.raises(QuantbenchError, match="unknown quantization method 'int3'; known: bf16, bnb_int8"):
        registry.recipe("int3", "pytorch")
