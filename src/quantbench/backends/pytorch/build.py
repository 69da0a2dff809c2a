"""PyTorch's builders: fp32/fp16/bf16, torch.ao dynamic INT8, and bitsandbytes NF4 and LLM.int8.

The model class comes from the suite's task (a sequence classifier, or a causal LM wrapped in
:class:`~quantbench.backends.base.CausalLMVariant`), through the shared Hugging Face helpers
(hf.py). A causal LM's lm_head stays in float unless the method option ``quantize_lm_head`` is
set; the record says which (``quant_config.lm_head``).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from quantbench.backends import hf
from quantbench.backends.base import BuildSettings, ModelSource, Variant, require_quantized
from quantbench.backends.pytorch import torch_ao

BACKEND = "pytorch"


def _finish(model, source: ModelSource, settings: BuildSettings, *, quant: str, started: float, layers: int,
            config: dict[str, Any], save=hf.save_pretrained) -> Variant:
    return hf.torch_variant(model, source, settings, quant=quant, backend=BACKEND, started=started, layers=layers,
                            config=config, save=save)


def _build_float(source: ModelSource, settings: BuildSettings, quant: str, dtype: torch.dtype) -> Variant:
    started = time.perf_counter()
    model = hf.load_model(source, settings, dtype=dtype).to("cuda:0" if settings.device == "cuda" else settings.device)
    layers = 0
    if dtype != torch.float32:
        layers = require_quantized(quant, sum(isinstance(m, torch.nn.Linear) and m.weight.dtype == dtype
                                              for m in model.modules()), f"{dtype} Linear modules")
    return _finish(model, source, settings, quant=quant, started=started, layers=layers,
                   config={"method": quant, "dtype": str(dtype).replace("torch.", "")})


def build_fp32(source: ModelSource, settings: BuildSettings) -> Variant:
    return _build_float(source, settings, "fp32", torch.float32)


def build_fp16(source: ModelSource, settings: BuildSettings) -> Variant:
    return _build_float(source, settings, "fp16", torch.float16)


def build_bf16(source: ModelSource, settings: BuildSettings) -> Variant:
    return _build_float(source, settings, "bf16", torch.bfloat16)


def build_dynamic_int8(source: ModelSource, settings: BuildSettings) -> Variant:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantLinear

    started = time.perf_counter()
    model = hf.load_model(source, settings, dtype=torch.float32)
    skip = hf.skipped_linear_names(model, settings)
    # By name, so lm_head can stay float; for a classifier every Linear is quantized, as before.
    spec = {name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name not in skip}
    # Deprecated in favour of torchao, and still the faster kernel (torch_ao.py has the figures).
    quantized = torch_ao.quantize_dynamic(model, spec, dtype=torch.qint8)
    layers = require_quantized("dynamic_int8", sum(isinstance(m, DynamicQuantLinear) for m in quantized.modules()),
                               "dynamic int8 Linear modules")
    config = {"method": "dynamic_int8", "library": "torch.ao.quantization.quantize_dynamic",
              "modules": ["Linear"], "weight_dtype": "qint8", "engine": torch.backends.quantized.engine,
              **hf.lm_head_config(quantized, settings, DynamicQuantLinear)}
    return _finish(quantized, source, settings, quant="dynamic_int8", started=started, layers=layers,
                   config=config, save=hf.save_state_dict)


def _device_map(device: str) -> dict[str, Any]:
    return {"": 0 if device == "cuda" else device}


def _build_bnb(source: ModelSource, settings: BuildSettings, *, quant: str, bnb_config, config: dict,
               module_type: type) -> Variant:
    started = time.perf_counter()
    # Non-quantized parts stay float32 on the CPU; bitsandbytes' default fp16 is a GPU habit.
    dtype = torch.float32 if settings.device == "cpu" else torch.float16
    model = hf.load_model(source, settings, quantization_config=bnb_config, device_map=_device_map(settings.device),
                  dtype=dtype)
    layers = require_quantized(quant, sum(isinstance(m, module_type) for m in model.modules()),
                               f"{module_type.__name__} modules")
    # Which heads transformers leaves in float under bitsandbytes differs between versions (4.57
    # keeps a classifier head in float, 5.x quantizes it): recorded, not assumed.
    config = {**config, **hf.lm_head_config(model, settings, module_type)}
    if quant == "nf4" and settings.device == "cpu":  # what runs is recorded, not what was asked
        config["cpu_kernel"] = nf4_cpu_path(model, module_type)
    head = getattr(model, "classifier", None)
    if not hf.is_causal(settings) and isinstance(head, torch.nn.Module):
        config["classifier_head"] = "quantized" if isinstance(head, module_type) else "float"
    return _finish(model, source, settings, quant=quant, started=started, layers=layers, config=config)


def build_nf4(source: ModelSource, settings: BuildSettings) -> Variant:
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


def bnb_int8_matmul(device: str) -> str:
    """What LLM.int8()'s int8 matmul runs: bitsandbytes 0.50 registers ``torch._int_mm`` for the CPU only
    where torch reports AVX-512 (its AVX2 fallback could overflow); otherwise its default op multiplies
    the int8 values in float32 (bitsandbytes/backends/{cpu,default}/ops.py)."""
    if device == "cpu" and torch.backends.cpu.get_cpu_capability() != "AVX512":
        return "float32 matmul of the int8 values (no AVX-512: bitsandbytes' default op)"
    return "torch._int_mm (int8 x int8 -> int32)"


def nf4_cpu_path(model, module_type: type) -> str:
    """What an NF4 Linear runs on this CPU: bitsandbytes repacks NF4 weights for AVX512-BF16 and runs a
    fused kernel on bf16 activations whatever compute_dtype says (bitsandbytes/nn/modules.py)."""
    layer = next((m for m in model.modules() if isinstance(m, module_type)), None)
    if getattr(layer, "support_avx512bf16_for_cpu", False):
        return "fused NF4 x bf16 kernel: weights repacked for AVX512-BF16, activations converted to bf16"
    return "NF4 weights dequantized to compute_dtype, then a float matmul"


def build_bnb_int8(source: ModelSource, settings: BuildSettings) -> Variant:
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig

    threshold = float(settings.options.get("threshold", 6.0))
    bnb_config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
    config = {"method": "bnb_int8", "library": f"bitsandbytes {bnb.__version__}", "threshold": threshold,
              "int8_matmul": bnb_int8_matmul(settings.device)}
    return _build_bnb(source, settings, quant="bnb_int8", bnb_config=bnb_config, config=config,
                      module_type=bnb.nn.Linear8bitLt)
