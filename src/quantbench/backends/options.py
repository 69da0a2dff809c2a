"""Method options and facts that several runtimes share (each runtime's own live beside its Runtime object)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearOptions:
    """Methods that quantize Linear layers may also quantize a causal LM's lm_head (default: float)."""

    quantize_lm_head: bool = False


#: Why a method that quantizes activations per tensor at run time is batch-sensitive (torch.ao's and
#: ONNX Runtime's dynamic int8): quality then scores each text alone.
PER_TENSOR_DYNAMIC = ("activations are quantized with one scale per tensor, taken at run time over the whole "
                      "batch and its padding")
