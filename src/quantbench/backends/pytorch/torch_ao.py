"""torch.ao's ``quantize_dynamic``: the PyTorch ``dynamic_int8`` method, for as long as torch ships it.

torch deprecates ``torch.ao.quantization`` in favour of torchao, whose successor is
``quantize_(model, Int8DynamicActivationInt8WeightConfig())`` (this project's ``int8dq``, on the
torchao runtime). Measured before choosing (the fine-tuned MiniLM of the default suite, seq 64, three
processes each; Intel Xeon family 6 model 167, AVX-512 VNNI/BF16 with AMX flags, 2 cores; docs/install.md):

======  =======  =====================  ====================
 batch   fp32     torch.ao dynamic_int8  torchao int8dq
======  =======  =====================  ====================
 1       9.8 ms   6.3 ms                 17.2 ms
 8       46.7 ms  26.3 ms                41.6 ms
 32      201 ms   93.3 ms                181 ms
======  =======  =====================  ====================

Both quantize all 38 Linear layers; accuracy 0.879 (torch.ao) and 0.885 (torchao) against fp32's
0.884. torchao is the gentler quantizer but 1.6x to 2.7x slower here (slower than fp32 at batch 1),
so ``dynamic_int8`` stays torch.ao's fbgemm kernels, and torch's two deprecation warnings are
silenced, by message, only around its calls. On a torch without it the method is skipped with that
reason (:func:`missing`); ``int8dq`` remains.
"""

from __future__ import annotations

import warnings
from typing import Any

#: The warnings torch 2.13 gives for every call, silenced with the figures above as the reason.
DEPRECATIONS = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation"),
)


def missing() -> str | None:
    """Why dynamic_int8 cannot be built with the installed torch (None: it can)."""
    import torch

    if getattr(getattr(getattr(torch, "ao", None), "quantization", None), "quantize_dynamic", None) is None:
        return (f"torch {torch.__version__} no longer ships torch.ao.quantization.quantize_dynamic; "
                "torchao's int8dq is its successor (--quant int8dq)")
    return None


def quantize_dynamic(model: Any, spec: Any, dtype: Any) -> Any:
    import torch

    with warnings.catch_warnings():
        for category, message in DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=category)
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=dtype)
