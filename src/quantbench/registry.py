"""Which quantization method runs on which backend, and the code that builds it.

One line per (method, backend) pair. The builder is named as ``"module:attr"`` and imported
only when a cell needs it, so a suite that never touches ONNX Runtime never imports it.
Adding a method is one builder function plus one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable

from quantbench.errors import MissingDependencyError, UnknownNameError

DEVICES = ("cpu", "cuda", "mps")


def _importable(module: str) -> bool:
    """Whether ``module`` can be found; a dotted name whose parent package is missing cannot."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@dataclass(frozen=True)
class Recipe:
    quant: str
    backend: str
    builder: str  # "module:attr", called as builder(model_source, settings) -> Variant
    devices: tuple[str, ...]
    requires: tuple[str, ...] = ()  # importable modules (pip extra named in `extra`)
    extra: str = ""
    options: tuple[str, ...] = ()  # keys a suite may set under method_options.<quant>
    description: str = ""
    # Heavy modules its builder imports lazily: memory workers import them once, before forking.
    preload: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()  # the tasks it can build a variant for; empty: every task
    needs_gguf: bool = False  # builds from the model's GGUF file: a model without one has no such cell
    # Why one text's output can depend on the other texts in its batch ("" when it cannot):
    # quality then scores each text alone (quality/batching.py).
    batch_sensitive: str = ""

    def fits(self, *, task: str, has_gguf: bool) -> bool:
        """Whether a model of ``task`` (with or without a GGUF source) can have this variant at all."""
        return (not self.tasks or task in self.tasks) and (has_gguf or not self.needs_gguf)

    def load(self) -> Callable:
        self.check_dependencies()
        module_name, attr = self.builder.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def missing_dependency(self) -> str | None:
        for module in self.requires:
            if not _importable(module):
                hint = f"pip install 'quantbench[{self.extra}]'" if self.extra else f"pip install {module}"
                return f"{self.quant} on {self.backend} needs the optional dependency {module!r}: {hint}"
        return None

    def check_dependencies(self) -> None:
        reason = self.missing_dependency()
        if reason:
            raise MissingDependencyError(reason)


_PT = "quantbench.backends.pytorch"
_ORT = "quantbench.backends.onnxruntime"
_ORT_DEPS = ("onnxruntime", "optimum.onnxruntime")
_ORT_PRELOAD = ("optimum.onnxruntime.modeling_decoder", "optimum.onnxruntime.modeling")
_BNB_DEPS = ("bitsandbytes", "accelerate")
_AO = "quantbench.backends.torchao"
_LC = "quantbench.backends.llamacpp"
_LC_DEPS = ("llama_cpp", "gguf")
_LC_PRELOAD = ("llama_cpp",)
_LC_METHODS = {
    "fp32": "llama.cpp GGUF ALL_F32 (the source GGUF dequantized): the cross-runtime check",
    "bf16": "llama.cpp GGUF MOSTLY_BF16",
    "q8_0": "llama.cpp GGUF Q8_0: 8-bit blocks of 32 with one scale",
    "q6_k": "llama.cpp GGUF Q6_K (K-quant; rows not a multiple of 256 fall back to Q8_0)",
    "q5_k_m": "llama.cpp GGUF Q5_K_M mix (rows not a multiple of 256 fall back to Q5_1/Q8_0)",
    "q5_0": "llama.cpp GGUF Q5_0: 5-bit blocks of 32",
    "q4_k_m": "llama.cpp GGUF Q4_K_M mix (rows not a multiple of 256 fall back to Q5_0/Q8_0)",
    "q4_0": "llama.cpp GGUF Q4_0: 4-bit blocks of 32 with one scale",
    "iq4_nl": "llama.cpp GGUF IQ4_NL: non-linear 4-bit blocks of 32",
    "gguf": "the model's GGUF file as shipped, not requantized (its type is in quant_config)",
}
#: llama.cpp runs causal LMs from their GGUF file.
_LC_FITS = {"tasks": ("text-generation",), "needs_gguf": True, "preload": _LC_PRELOAD}
_OV = "quantbench.backends.openvino"
_OV_DEPS = ("openvino", "nncf", "optimum.intel.openvino")
_OV_PRELOAD = ("openvino", "optimum.intel.openvino.modeling", "optimum.intel.openvino.modeling_decoder")
#: OpenVINO's runtime settings (CPU plugin properties, set and read back); fp32 and bf16 fix theirs.
_OV_PRECISION = ("inference_precision", "dynamic_quantization_group_size", "kv_cache_precision")
_OV_METHODS = {
    "fp32": ((), "OpenVINO IR, float32 (f32 inference, f32 KV cache, no dynamic quantization)"),
    "bf16": (("kv_cache_precision",), "OpenVINO IR float32 run with the CPU plugin's bf16 inference"),
    "int8wo": (_OV_PRECISION, ("OpenVINO OVWeightQuantizationConfig(bits=8): int8 asymmetric per-channel "
                               "weights, float activations")),
    "int4wo": ((*_OV_PRECISION, "group_size"), ("OpenVINO OVWeightQuantizationConfig(bits=4): int4 symmetric "
                                                "weights in groups of group_size (64), embeddings int8")),
    "static_int8": (_OV_PRECISION, ("OpenVINO OVQuantizationConfig: int8 weights and activations (FakeQuantize), "
                                    "calibrated")),
}
#: Every method that quantizes Linear layers may leave a causal LM's lm_head in float (the default).
_LM_HEAD = ("quantize_lm_head",)
_PER_TENSOR_DYNAMIC = ("activations are quantized with one scale per tensor, taken at run time over the whole "
                       "batch and its padding")

RECIPES: tuple[Recipe, ...] = (
    Recipe("fp32", "pytorch", f"{_PT}:build_fp32", DEVICES, description="unquantized float32 baseline"),
    Recipe("fp16", "pytorch", f"{_PT}:build_fp16", ("cuda", "mps"), description="half precision"),
    Recipe("bf16", "pytorch", f"{_PT}:build_bf16", ("cpu", "cuda"), description="bfloat16"),
    Recipe("dynamic_int8", "pytorch", f"{_PT}:build_dynamic_int8", ("cpu",), options=_LM_HEAD,
           description="torch.ao quantize_dynamic: int8 weights, activations quantized at run time",
           batch_sensitive=_PER_TENSOR_DYNAMIC),
    Recipe("int8wo", "pytorch", f"{_AO}:build_int8_weight_only", ("cpu", "cuda"), ("torchao",), "torchao",
           options=_LM_HEAD, description="torchao Int8WeightOnlyConfig: int8 weights, float activations"),
    Recipe("int8dq", "pytorch", f"{_AO}:build_int8_dynamic", ("cpu", "cuda"), ("torchao",), "torchao",
           options=_LM_HEAD, description="torchao Int8DynamicActivationInt8WeightConfig: int8 weights and "
                                         "per-token dynamic int8 activations"),
    Recipe("nf4", "pytorch", f"{_PT}:build_nf4", ("cpu", "cuda"), _BNB_DEPS, "bnb",
           options=("double_quant", "compute_dtype"), description="bitsandbytes 4-bit NormalFloat"),
    Recipe("bnb_int8", "pytorch", f"{_PT}:build_bnb_int8", ("cpu", "cuda"), _BNB_DEPS, "bnb",
           options=("threshold",), description="bitsandbytes LLM.int8()",
           batch_sensitive="LLM.int8() keeps in float the feature columns where any row of the batch exceeds the "
                           "outlier threshold"),
    Recipe("fp32", "onnxruntime", f"{_ORT}:build_fp32", ("cpu", "cuda"), _ORT_DEPS, "onnx",
           description="ONNX export, float32", preload=_ORT_PRELOAD),
    Recipe("dynamic_int8", "onnxruntime", f"{_ORT}:build_dynamic_int8", ("cpu",), _ORT_DEPS, "onnx",
           options=("per_channel", "isa"), description="ORTQuantizer dynamic int8 (QOperator)", preload=_ORT_PRELOAD,
           batch_sensitive=_PER_TENSOR_DYNAMIC),
    Recipe("static_int8", "onnxruntime", f"{_ORT}:build_static_int8", ("cpu",), _ORT_DEPS, "onnx",
           options=("per_channel", "isa"), description="ORTQuantizer static int8 (QDQ), calibrated", preload=_ORT_PRELOAD),
    # llama.cpp: one GGUF type per method, each built by llama_model_quantize from the model's GGUF.
    *(Recipe(quant, "llamacpp", f"{_LC}:build_{quant}", ("cpu",), _LC_DEPS, "llamacpp", description=about,
             **_LC_FITS) for quant, about in _LC_METHODS.items()),
    # OpenVINO through optimum-intel: both tasks, exported from the checkpoint, CPU plugin.
    *(Recipe(quant, "openvino", f"{_OV}:build_{quant}", ("cpu",), _OV_DEPS, "openvino", options=options,
             description=about, preload=_OV_PRELOAD) for quant, (options, about) in _OV_METHODS.items()),
)

_BY_KEY = {(r.quant, r.backend): r for r in RECIPES}

#: Backends whose variants are scored against another backend's fp32 (the model's one fp32
#: reference) instead of their own: llama.cpp reads the GGUF that PyTorch dequantizes, and
#: OpenVINO exports the checkpoint PyTorch loads, so each one's fp32 is itself a cross-runtime
#: check against PyTorch fp32.
QUALITY_REFERENCE_BACKEND = {"llamacpp": "pytorch", "openvino": "pytorch"}


#: Backends that serve through their own server process (serving/cell.py): the adapter as a lazy
#: ``"module:attr"``, imported only when one of that backend's serving cells runs. Every other
#: backend is served in process, behind the harness's batcher. (The runtime-package refactor turns
#: this into a field of each runtime's object.)
SERVING_ADAPTERS = {"llamacpp": "quantbench.backends.llamacpp_server:ADAPTER"}


def serving_adapter(backend: str):
    """The serving adapter of ``backend``, or None when its variants are served in process."""
    target = SERVING_ADAPTERS.get(backend)
    if target is None:
        return None
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


def quant_methods() -> tuple[str, ...]:
    return tuple(sorted({r.quant for r in RECIPES}))


def backends() -> tuple[str, ...]:
    return tuple(sorted({r.backend for r in RECIPES}))


def method_option_names(quant: str) -> tuple[str, ...]:
    return tuple(sorted({o for r in RECIPES if r.quant == quant for o in r.options}))


def recipe(quant: str, backend: str) -> Recipe | None:
    """The recipe for a pair, or None when the pair does not exist (e.g. static_int8 on pytorch)."""
    if quant not in quant_methods():
        raise UnknownNameError(f"unknown quantization method {quant!r}; known: {', '.join(quant_methods())}")
    if backend not in backends():
        raise UnknownNameError(f"unknown backend {backend!r}; known: {', '.join(backends())}")
    return _BY_KEY.get((quant, backend))
