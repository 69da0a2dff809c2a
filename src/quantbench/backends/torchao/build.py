"""torchao variants: int8 weight-only (``int8wo``) and int8 dynamic activations + int8 weights (``int8dq``).

torchao is where PyTorch's quantization lives now (``torch.ao.quantization.quantize_dynamic``
is deprecated in its favour). ``quantize_`` swaps each selected Linear's weight for a torchao
tensor subclass; proof of quantization counts those weights. For a causal LM, lm_head stays in
float unless ``quantize_lm_head`` (a tied lm_head is then untied by the swap: the embedding keeps
its float weight). For a classifier the classification head is quantized with the rest, as
dynamic_int8 does. Disk size is the ``torch.save`` state dict: torchao tensors do not go into
safetensors here, and that pickle is what users ship them in (written only to be measured).
"""

from __future__ import annotations

import importlib.metadata
import time

import torch

from quantbench.backends import hf
from quantbench.backends.base import BuildSettings, ModelSource, Variant, require_quantized

#: torchao's methods are PyTorch variants: cells and records name the pytorch backend.
BACKEND = "pytorch"


def _is_torchao_weight(module: torch.nn.Module) -> bool:
    from torchao.utils import TorchAOBaseTensor

    return isinstance(module, torch.nn.Linear) and isinstance(module.weight, TorchAOBaseTensor)


def _build(source: ModelSource, settings: BuildSettings, *, quant: str, config_name: str) -> Variant:
    import torchao.quantization as ao

    started = time.perf_counter()
    model = hf.load_model(source, settings, dtype=torch.float32)
    if settings.device == "cuda":
        model = model.to("cuda:0")
    skip = hf.skipped_linear_names(model, settings)
    ao.quantize_(model, getattr(ao, config_name)(),
                 filter_fn=lambda module, fqn: isinstance(module, torch.nn.Linear) and fqn not in skip)
    layers = require_quantized(quant, sum(_is_torchao_weight(m) for m in model.modules()),
                               "Linear modules with torchao int8 weights")
    head = getattr(model, "lm_head", None)
    config = {"method": quant, "library": f"torchao {importlib.metadata.version('torchao')}",
              "config": config_name, "weight_dtype": "int8", "format": "torch.save state dict",
              **hf.lm_head_config(model, settings),
              **({"lm_head": "quantized" if _is_torchao_weight(head) else "float"} if head is not None and
                 settings.task == "text-generation" else {})}
    return hf.torch_variant(model, source, settings, quant=quant, backend=BACKEND, started=started, layers=layers,
                            config=config, save=hf.save_state_dict)


def build_int8_weight_only(source: ModelSource, settings: BuildSettings) -> Variant:
    return _build(source, settings, quant="int8wo", config_name="Int8WeightOnlyConfig")


def build_int8_dynamic(source: ModelSource, settings: BuildSettings) -> Variant:
    return _build(source, settings, quant="int8dq", config_name="Int8DynamicActivationInt8WeightConfig")
