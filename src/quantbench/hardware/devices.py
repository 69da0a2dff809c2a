"""Is a device really here? Each check returns None, or the one-line reason it is not.

Nothing here pretends: a CUDA cell on a machine without CUDA is skipped with the reason
below, never run on the CPU under the CUDA label.
"""

from __future__ import annotations

import functools

from quantbench import isa
from quantbench.registry import Recipe


@functools.lru_cache(maxsize=None)
def device_unavailable(device: str) -> str | None:
    if device == "cpu":
        return None  # before importing torch: a CPU-only sweep collects without it
    import torch

    if device == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device (torch.cuda.is_available() is False)"
        return None
    if device == "mps":
        if not torch.backends.mps.is_available():
            return "no MPS device (torch.backends.mps.is_available() is False)"
        return None
    return f"unknown device {device!r}"


def precision_unavailable(recipe: Recipe, device: str, options: dict | None = None) -> str | None:
    """Why the method's compute precision cannot run natively on ``device`` (None: it can).

    bf16 on a CPU without AVX512_BF16 or AMX-BF16 is converted or emulated by every runtime (torch
    ran a bf16 matmul at 0.3 GFLOP/s on an AVX2 Zen 3; OpenVINO's CPU plugin silently keeps f32):
    such a cell is not a bf16 measurement, so it is skipped before it is built, as a missing device is.
    """
    precision = recipe.precision(options)
    if precision == "bf16" and device == "cpu":
        missing = isa.missing_for(isa.BF16_NATIVE)
        if missing:
            return f"{recipe.quant} on {recipe.backend} computes in bf16, which needs native bf16 on the CPU: {missing}"
    if precision == "bf16" and device == "cuda":
        import torch

        if not torch.cuda.is_bf16_supported():
            return f"this GPU ({torch.cuda.get_device_name()}) does not support bfloat16"
    return None


def cell_unavailable(recipe: Recipe, device: str, options: dict | None = None) -> str | None:
    """Why this (method, backend) with ``options`` cannot run on ``device`` here, or None if it can."""
    if device not in recipe.devices:
        return f"{recipe.quant} on {recipe.backend} does not run on {device} (runs on: {', '.join(recipe.devices)})"
    reason = recipe.missing_dependency() or device_unavailable(device)
    if reason:
        return reason
    return runtime_unavailable(recipe.runtime.device_check, device) or precision_unavailable(recipe, device, options)


@functools.lru_cache(maxsize=None)
def runtime_unavailable(check: str, device: str) -> str | None:
    """The runtime's own reason it cannot run on ``device`` (its ``device_check``), or None."""
    if not check:
        return None
    from quantbench.backends.runtime import load

    return load(check)(device)


def synchronize(device: str) -> None:
    """Wait for queued GPU work so a timer measures it, not just its launch."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()
