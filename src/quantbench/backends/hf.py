"""Hugging Face helpers every runtime shares: loading a checkpoint, its pad and BOS tokens, its
parameter count, what a causal LM keeps in float, and saving a torch model to measure its size.

Runtimes import these, never each other: PyTorch and torchao build torch models with them, ONNX
Runtime and OpenVINO read a checkpoint's facts with them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from quantbench import task_kinds
from quantbench.backends.base import (BuildInfo, BuildSettings, CausalLMVariant, ModelSource, TorchModelVariant,
                                      Variant, directory_size)
from quantbench.errors import QuantbenchError


def logical_param_count(path: Path) -> int:
    """Parameters of the checkpoint as trained, read from safetensors headers (no load)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                total += int(np.prod(handle.get_slice(name).get_shape()))
    return total


def is_causal(settings: BuildSettings) -> bool:
    return task_kinds.is_causal(settings.task)


def load_model(source: ModelSource, settings: BuildSettings, **kwargs):
    """The checkpoint as the task's transformers Auto class loads it (safetensors only from our cache)."""
    from quantbench import cache

    if Path(source.path).resolve().is_relative_to(cache.cache_root().resolve()):
        kwargs["use_safetensors"] = True  # from our cache: safetensors only, never a pickle
    return task_kinds.kind(settings.task).model_class().from_pretrained(
        source.path, trust_remote_code=source.trust_remote_code, **kwargs)


def pad_token_id(model) -> int:
    """The id generate pads with: the model's pad token, else its EOS (the GGUF has no pad)."""
    for value in (model.generation_config.pad_token_id, model.config.pad_token_id, model.config.eos_token_id):
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    raise QuantbenchError("the causal LM has neither a pad nor an EOS token id; generate cannot pad")


def bos_id(tokenizer) -> int | None:
    """The token every scored text starts from: BOS, else EOS (GPT-2 style), else none."""
    for name in ("bos_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return None


def skipped_linear_names(model, settings: BuildSettings) -> set[str]:
    """Linear modules a method leaves in float: a causal LM's lm_head, unless quantize_lm_head."""
    if not is_causal(settings) or settings.options.get("quantize_lm_head", False):
        return set()
    return {"lm_head"}


def lm_head_config(model, settings: BuildSettings, quantized_type: type | None = None) -> dict[str, Any]:
    """What a causal LM's record says about its lm_head and embeddings (nothing for a classifier)."""
    if not is_causal(settings):
        return {}
    head = getattr(model, "lm_head", None)
    if quantized_type is not None and head is not None:
        state = "quantized" if isinstance(head, quantized_type) else "float"
    else:
        state = "float" if "lm_head" in skipped_linear_names(model, settings) else "quantized"
    return {"lm_head": state, "embeddings": "float",
            "tied_embeddings": bool(getattr(model.config, "tie_word_embeddings", False))}


def saved_size(model, save: Callable[[Any, Path], None]) -> int:
    with tempfile.TemporaryDirectory(prefix="quantbench-size-") as tmp:
        save(model, Path(tmp))
        return directory_size(Path(tmp))


def save_pretrained(model, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)


def save_state_dict(model, out: Path) -> None:
    """``torch.save`` of the state dict: how quantized torch modules that safetensors cannot store (torch.ao
    dynamic int8, torchao tensors) are shipped. Written only to be measured, never loaded back."""
    import torch

    torch.save(model.state_dict(), out / "pytorch_model.bin")


def torch_variant(model, source: ModelSource, settings: BuildSettings, *, quant: str, backend: str, started: float,
                  layers: int, config: dict[str, Any], save: Callable[[Any, Path], None] = save_pretrained) -> Variant:
    """A built torch model as the task's variant: measured on disk (unless the memory worker builds
    it), a causal LM with its pad token set for generate."""
    size = saved_size(model, save) if settings.measure_size else 0
    info = BuildInfo(disk_size_bytes=size, param_count=logical_param_count(source.path),
                     quantized_layers=layers, quant_config=config, build_seconds=time.perf_counter() - started)
    if is_causal(settings):
        model.eval()
        pad = pad_token_id(model)
        model.generation_config.pad_token_id = pad  # generate() would otherwise warn every call
        return CausalLMVariant(model, quant=quant, backend=backend, device=settings.device, info=info,
                               pad_token_id=pad)
    return TorchModelVariant(model, quant=quant, backend=backend, device=settings.device, info=info)
