"""PyTorch variants: fp32/fp16/bf16, torch dynamic INT8, and bitsandbytes NF4 and LLM.int8.

The model class comes from the suite's task (a sequence classifier, or a causal LM wrapped in
:class:`~quantbench.backends.base.CausalLMVariant`). A causal LM's lm_head stays in float unless
the method option ``quantize_lm_head`` is set; the record says which (``quant_config.lm_head``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from quantbench.errors import QuantbenchError
from quantbench.backends.base import (BuildInfo, BuildSettings, CausalLMVariant, ModelSource, TorchOutputs,
                                      Variant, directory_size, require_quantized)


class PyTorchVariant(TorchOutputs, Variant):
    backend = "pytorch"

    def __init__(self, model: torch.nn.Module, *, quant: str, device: str, info: BuildInfo):
        self.model, self.quant, self.device, self.info = model.eval(), quant, device, info
        self._torch_device = torch.device("cuda:0" if device == "cuda" else device)

    def prepare(self, encoding: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.asarray(v)).to(self._torch_device) for k, v in encoding.items()}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**inputs).logits


def logical_param_count(path: Path) -> int:
    """Parameters of the checkpoint as trained, read from safetensors headers (no load)."""
    from safetensors import safe_open

    total = 0
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                total += int(np.prod(handle.get_slice(name).get_shape()))
    return total


def _load(source: ModelSource, settings: BuildSettings, **kwargs) -> torch.nn.Module:
    from quantbench import cache, tasks

    if Path(source.path).resolve().is_relative_to(cache.cache_root().resolve()):
        kwargs["use_safetensors"] = True  # from our cache: safetensors only, never a pickle
    return tasks.get(settings.task).model_class().from_pretrained(
        source.path, trust_remote_code=source.trust_remote_code, **kwargs)


def is_causal(settings: BuildSettings) -> bool:
    from quantbench import tasks

    return settings.task == tasks.GENERATION


def pad_token_id(model) -> int:
    """The id generate pads with: the model's pad token, else its EOS (the GGUF has no pad)."""
    for value in (model.generation_config.pad_token_id, model.config.pad_token_id, model.config.eos_token_id):
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    raise QuantbenchError("the causal LM has neither a pad nor an EOS token id; generate cannot pad")


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


def _saved_size(model: torch.nn.Module, save: Callable[[torch.nn.Module, Path], None]) -> int:
    with tempfile.TemporaryDirectory(prefix="quantbench-size-") as tmp:
        save(model, Path(tmp))
        return directory_size(Path(tmp))


def _save_pretrained(model: torch.nn.Module, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)


def _save_state_dict(model: torch.nn.Module, out: Path) -> None:
    # Dynamic-int8 modules hold packed weights that safetensors cannot store; torch.save is the
    # format users ship them in. It is written only to be measured, never loaded back.
    torch.save(model.state_dict(), out / "pytorch_model.bin")


def _finish(model, source: ModelSource, settings: BuildSettings, *, quant: str, started: float, layers: int,
            config: dict[str, Any], save=_save_pretrained) -> Variant:
    size = _saved_size(model, save) if settings.measure_size else 0
    info = BuildInfo(disk_size_bytes=size, param_count=logical_param_count(source.path),
                     quantized_layers=layers, quant_config=config, build_seconds=time.perf_counter() - started)
    if is_causal(settings):
        model.eval()
        pad = pad_token_id(model)
        model.generation_config.pad_token_id = pad  # generate() would otherwise warn every call
        return CausalLMVariant(model, quant=quant, backend="pytorch", device=settings.device, info=info,
                               pad_token_id=pad)
    return PyTorchVariant(model, quant=quant, device=settings.device, info=info)


def _build_float(source: ModelSource, settings: BuildSettings, quant: str, dtype: torch.dtype) -> PyTorchVariant:
    started = time.perf_counter()
    model = _load(source, settings, dtype=dtype).to("cuda:0" if settings.device == "cuda" else settings.device)
    layers = 0
    if dtype != torch.float32:
        layers = require_quantized(quant, sum(isinstance(m, torch.nn.Linear) and m.weight.dtype == dtype
                                              for m in model.modules()), f"{dtype} Linear modules")
    return _finish(model, source, settings, quant=quant, started=started, layers=layers,
                   config={"method": quant, "dtype": str(dtype).replace("torch.", "")})


def build_fp32(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    return _build_float(source, settings, "fp32", torch.float32)


def build_fp16(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    return _build_float(source, settings, "fp16", torch.float16)


def build_bf16(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    return _build_float(source, settings, "bf16", torch.bfloat16)


def build_dynamic_int8(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    import warnings

    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

    started = time.perf_counter()
    model = _load(source, settings, dtype=torch.float32)
    skip = skipped_linear_names(model, settings)
    # By name, so lm_head can stay float; for a classifier every Linear is quantized, as before.
    spec = {name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name not in skip}
    with warnings.catch_warnings():
        # Deprecated in favour of torchao, still correct in torch 2.x; kept behind the registry.
        warnings.simplefilter("ignore", DeprecationWarning)
        quantized = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
    layers = require_quantized("dynamic_int8", sum(isinstance(m, DynamicQuantLinear) for m in quantized.modules()),
                               "dynamic int8 Linear modules")
    config = {"method": "dynamic_int8", "library": "torch.ao.quantization.quantize_dynamic",
              "modules": ["Linear"], "weight_dtype": "qint8", "engine": torch.backends.quantized.engine,
              **lm_head_config(quantized, settings, DynamicQuantLinear)}
    return _finish(quantized, source, settings, quant="dynamic_int8", started=started, layers=layers,
                   config=config, save=_save_state_dict)


def _device_map(device: str) -> dict[str, Any]:
    return {"": 0 if device == "cuda" else device}


def _build_bnb(source: ModelSource, settings: BuildSettings, *, quant: str, bnb_config, config: dict,
               module_type: type) -> PyTorchVariant:
    started = time.perf_counter()
    # Non-quantized parts stay float32 on the CPU; bitsandbytes' default fp16 is a GPU habit.
    dtype = torch.float32 if settings.device == "cpu" else torch.float16
    model = _load(source, settings, quantization_config=bnb_config, device_map=_device_map(settings.device),
                  dtype=dtype)
    layers = require_quantized(quant, sum(isinstance(m, module_type) for m in model.modules()),
                               f"{module_type.__name__} modules")
    # Which heads transformers leaves in float under bitsandbytes differs between versions (4.57
    # keeps a classifier head in float, 5.x quantizes it): recorded, not assumed.
    config = {**config, **lm_head_config(model, settings, module_type)}
    head = getattr(model, "classifier", None)
    if not is_causal(settings) and isinstance(head, torch.nn.Module):
        config["classifier_head"] = "quantized" if isinstance(head, module_type) else "float"
    return _finish(model, source, settings, quant=quant, started=started, layers=layers, config=config)


def build_nf4(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig

    double = bool(settings.options.get("double_quant", False))
    default_compute = "float32" if settings.device == "cpu" else "float16"
    compute = str(settings.options.get("compute_dtype", default_compute))
    bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_use_double_quant=double, bnb_4bit_compute_dtype=getattr(torch, compute))
    config = {"method": "nf4", "library": f"bitsandbytes {bnb.__version__}", "quant_type": "nf4",
              "double_quant": double, "compute_dtype": compute}
    return _build_bnb(source, settings, quant="nf4", bnb_config=bnb_config, config=config,
                      module_type=bnb.nn.Linear4bit)


def bnb_int8_kernel(device: str) -> str:
    """The kernel family LLM.int8()'s int8 matmul runs: bitsandbytes 0.50 registers ``torch._int_mm``
    for the CPU only where torch reports AVX-512 (its AVX2 fallback could overflow); otherwise its
    default op multiplies the int8 values in float32 (bitsandbytes/backends/{cpu,default}/ops.py)."""
    if device == "cpu" and torch.backends.cpu.get_cpu_capability() != "AVX512":
        return "fp32"
    return "int8_torch"


def build_bnb_int8(source: ModelSource, settings: BuildSettings) -> PyTorchVariant:
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig

    threshold = float(settings.options.get("threshold", 6.0))
    bnb_config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
    config = {"method": "bnb_int8", "library": f"bitsandbytes {bnb.__version__}", "threshold": threshold,
              "compute_kernel": bnb_int8_kernel(settings.device)}
    return _build_bnb(source, settings, quant="bnb_int8", bnb_config=bnb_config, config=config,
                      module_type=bnb.nn.Linear8bitLt)
