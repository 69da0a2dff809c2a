"""Is a device really here? Each check returns None, or the one-line reason it is not.

Nothing here pretends: a CUDA cell on a machine without CUDA is skipped with the reason
below, never run on the CPU under the CUDA label.
"""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=None)
def _ort_providers() -> tuple[str, ...]:
    import onnxruntime

    return tuple(onnxruntime.get_available_providers())


def dtype_unavailable(quant: str, device: str) -> str | None:
    if quant != "bf16" or device != "cuda":
        return None
    import torch

    if not torch.cuda.is_bf16_supported():
        return f"this GPU ({torch.cuda.get_device_name()}) does not support bfloat16"
    return None


def cell_unavailable(recipe: Recipe, device: str) -> str | None:
    """Why this (method, backend) cannot run on ``device`` here, or None if it can."""
    if device not in recipe.devices:
        return f"{recipe.quant} on {recipe.backend} does not run on {device} (runs on: {', '.join(recipe.devices)})"
    reason = recipe.missing_dependency() or device_unavailable(device)
    if reason:
        return reason
    if recipe.backend == "onnxruntime" and device == "cuda" and "CUDAExecutionProvider" not in _ort_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return dtype_unavailable(recipe.quant, device)


def synchronize(device: str) -> None:
    """Wait for queued GPU work so a timer measures it, not just its launch."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()
