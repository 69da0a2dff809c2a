"""Method options that several runtimes share (each runtime's own live beside its Runtime object)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearOptions:
    """Methods that quantize Linear layers may also quantize a causal LM's lm_head (default: float)."""

    quantize_lm_head: bool = False
