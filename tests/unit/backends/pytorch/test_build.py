"""PyTorch variants on a tiny random model: each quantized build proves it quantized, fp32 does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quantbench.backends.pytorch import build as pt
from quantbench.backends.base import QuantizationNotApplied, require_quantized
from tests.unit.backends.conftest import build

# The tiny model: 2 layers x 6 Linear (q, k, v, attention output, intermediate, output) + pooler + classifier.
LINEARS = 14


def test_fp32_counts_no_quantized_layers_and_has_the_checkpoint_params(source, encoding):
    variant = build(pt.build_fp32, source)
    assert variant.info.quantized_layers == 0
    assert variant.info.param_count == sum(p.numel() for p in variant.model.state_dict().values()
                                           if p.dtype.is_floating_point)
    assert variant.logits(encoding).shape == (1, 2)


def test_dynamic_int8_quantizes_every_linear(source, encoding):
    fp32 = build(pt.build_fp32, source).logits(encoding)
    variant = build(pt.build_dynamic_int8, source)
    assert variant.info.quantized_layers == LINEARS
    assert variant.info.quant_config["weight_dtype"] == "qint8"
    assert np.allclose(variant.logits(encoding), fp32, atol=0.05)


def test_nf4_and_llm_int8_on_cpu(source, encoding):
    pytest.importorskip("bitsandbytes")
    nf4 = build(pt.build_nf4, source, double_quant=True)
    # transformers 4.57 keeps the classifier head in full precision under bitsandbytes, 5.x does
    # not: the record says which, and the count must match it.
    head_float = nf4.info.quant_config["classifier_head"] == "float"
    assert nf4.info.quantized_layers == LINEARS - head_float
    assert nf4.info.quant_config["double_quant"] is True and nf4.info.quant_config["quant_type"] == "nf4"
    assert np.isfinite(nf4.logits(encoding)).all()
    int8 = build(pt.build_bnb_int8, source)
    assert int8.info.quantized_layers == LINEARS - (int8.info.quant_config["classifier_head"] == "float")
    assert np.isfinite(int8.logits(encoding)).all()


def test_bf16_counts_half_precision_linears(source):
    variant = build(pt.build_bf16, source)
    assert variant.info.quantized_layers == LINEARS
    assert next(variant.model.parameters()).dtype == torch.bfloat16


def test_a_build_that_quantizes_nothing_is_refused():
    with pytest.raises(QuantizationNotApplied, match="nf4: the build quantized nothing"):
        require_quantized("nf4", 0, "Linear4bit modules")
