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

from quantbench import isa
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
    # The kernel family its matmuls run (a KERNELS name): the peak a cell's share is taken against.
    compute: str = "fp32"
    # The method option that sets a float method's compute precision (nf4: compute_dtype; OpenVINO:
    # inference_precision): bf16 there means the bf16 kernels, and a CPU without native bf16 skips it.
    precision_option: str = ""

    def precision(self, options: dict | None = None) -> str | None:
        """The float precision the method computes in, as its options set it ("bf16", "fp16") or None."""
        if self.compute in ("bf16", "fp16"):
            return self.compute
        value = (options or {}).get(self.precision_option) if self.precision_option else None
        return _PRECISION_NAMES.get(str(value)) if value is not None else None

    def compute_for(self, options: dict | None = None) -> str:
        """The kernel family a variant built with ``options`` (or its recorded quant_config) runs."""
        if self.compute != "fp32":
            return self.compute
        return self.precision(options) or self.compute

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


#: Option values that name a half precision (torch dtype names and OpenVINO element types).
_PRECISION_NAMES = {"bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "f16": "fp16", "float32": None, "f32": None}


@dataclass(frozen=True)
class Kernel:
    """A compute kernel family that methods' matmuls run; the machine's limit for it is ``limit``.

    ``probe`` ("module:attr") builds one call of the kernel at a size (efficiency/kernels.py); an
    empty probe means no stand-alone kernel can be timed, and ``unmeasured`` says why. ``native_on``
    lists CPU flags any of which gives the kernel a native path; without them it is *emulated*: still
    timed (on a small size, since it is slow), never drawn as a roof.
    """

    name: str
    probe: str
    devices: tuple[str, ...] = DEVICES
    requires: tuple[str, ...] = ()
    unit: str = "GFLOP/s"
    native_on: tuple[str, ...] = ()
    emulated: str = ""  # what runs without native_on, in words
    unmeasured: str = ""

    @property
    def limit(self) -> str:
        return f"matmul_{self.name}"

    def load(self) -> Callable:
        module_name, attr = self.probe.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def missing(self, device: str) -> str | None:
        """Why this kernel cannot be timed on ``device`` here (None: it can)."""
        if self.unmeasured:
            return self.unmeasured
        if device not in self.devices:
            return f"no {self.name} kernel on {device}"
        for module in self.requires:
            if not _importable(module):
                return f"{module} is not installed"
        return None

    def emulated_here(self, device: str, cpu_isa: dict | None = None) -> str | None:
        """The reason this kernel runs a non-native path on this CPU, or None."""
        if device != "cpu" or not self.native_on:
            return None
        missing = isa.missing_for(self.native_on, cpu_isa)
        return f"{missing}: {self.emulated}" if missing else None


_PTK = "quantbench.backends.pytorch_kernels"
KERNELS: tuple[Kernel, ...] = (
    Kernel("fp32", f"{_PTK}:matmul_fp32"),
    Kernel("bf16", f"{_PTK}:matmul_bf16", ("cpu", "cuda"), native_on=isa.BF16_NATIVE,
           emulated="bf16 matmuls are converted to float32 or run by a reference loop"),
    Kernel("fp16", f"{_PTK}:matmul_fp16", ("cuda", "mps")),
    Kernel("int8_fbgemm", f"{_PTK}:dynamic_linear", ("cpu",), unit="GOP/s"),
    Kernel("int8_torch", f"{_PTK}:int_mm", ("cpu", "cuda"), unit="GOP/s", native_on=isa.INT8_VNNI,
           emulated="torch._int_mm runs a reference loop"),
    Kernel("int8_onnxruntime", "quantbench.backends.onnxruntime_kernels:matmul_integer", ("cpu",),
           ("onnxruntime", "onnx"), unit="GOP/s"),
    Kernel("int8_openvino", "quantbench.backends.openvino_kernels:int8_matmul", ("cpu",), ("openvino",),
           unit="GOP/s"),
    Kernel("ggml_quant", "", ("cpu",), unit="GOP/s",
           unmeasured="llama.cpp's block-quantized dot products (weights repacked per type, activations "
                      "quantized to 8 bits inside ggml) have no stand-alone kernel to time from Python: "
                      "these cells carry achieved GFLOP/s and their decode bandwidth share, no compute share"),
)
_KERNELS = {k.name: k for k in KERNELS}


def kernel(name: str) -> Kernel:
    if name not in _KERNELS:
        raise UnknownNameError(f"unknown compute kernel {name!r}; known: {', '.join(_KERNELS)}")
    return _KERNELS[name]


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
#: OpenVINO's weight-only methods decompress into float matmuls (fp32 family); static int8 runs int8.
_OV_COMPUTE = {"bf16": "bf16", "static_int8": "int8_openvino"}
#: Every method that quantizes Linear layers may leave a causal LM's lm_head in float (the default).
_LM_HEAD = ("quantize_lm_head",)
_PER_TENSOR_DYNAMIC = ("activations are quantized with one scale per tensor, taken at run time over the whole "
                       "batch and its padding")

RECIPES: tuple[Recipe, ...] = (
    Recipe("fp32", "pytorch", f"{_PT}:build_fp32", DEVICES, description="unquantized float32 baseline"),
    Recipe("fp16", "pytorch", f"{_PT}:build_fp16", ("cuda", "mps"), description="half precision", compute="fp16"),
    Recipe("bf16", "pytorch", f"{_PT}:build_bf16", ("cpu", "cuda"), description="bfloat16", compute="bf16"),
    Recipe("dynamic_int8", "pytorch", f"{_PT}:build_dynamic_int8", ("cpu",), options=_LM_HEAD,
           description="torch.ao quantize_dynamic: int8 weights, activations quantized at run time",
           batch_sensitive=_PER_TENSOR_DYNAMIC, compute="int8_fbgemm"),
    Recipe("int8wo", "pytorch", f"{_AO}:build_int8_weight_only", ("cpu", "cuda"), ("torchao",), "torchao",
           options=_LM_HEAD, description="torchao Int8WeightOnlyConfig: int8 weights, float activations"),
    Recipe("int8dq", "pytorch", f"{_AO}:build_int8_dynamic", ("cpu", "cuda"), ("torchao",), "torchao",
           options=_LM_HEAD, description="torchao Int8DynamicActivationInt8WeightConfig: int8 weights and "
                                         "per-token dynamic int8 activations", compute="int8_torch"),
    Recipe("nf4", "pytorch", f"{_PT}:build_nf4", ("cpu", "cuda"), _BNB_DEPS, "bnb",
           options=("double_quant", "compute_dtype"), description="bitsandbytes 4-bit NormalFloat",
           precision_option="compute_dtype"),
    Recipe("bnb_int8", "pytorch", f"{_PT}:build_bnb_int8", ("cpu", "cuda"), _BNB_DEPS, "bnb",
           options=("threshold",), description="bitsandbytes LLM.int8()",
           batch_sensitive="LLM.int8() keeps in float the feature columns where any row of the batch exceeds the "
                           "outlier threshold"),
    Recipe("fp32", "onnxruntime", f"{_ORT}:build_fp32", ("cpu", "cuda"), _ORT_DEPS, "onnx",
           description="ONNX export, float32", preload=_ORT_PRELOAD),
    Recipe("dynamic_int8", "onnxruntime", f"{_ORT}:build_dynamic_int8", ("cpu",), _ORT_DEPS, "onnx",
           options=("per_channel", "isa"), description="ORTQuantizer dynamic int8 (QOperator)", preload=_ORT_PRELOAD,
           batch_sensitive=_PER_TENSOR_DYNAMIC, compute="int8_onnxruntime"),
    Recipe("static_int8", "onnxruntime", f"{_ORT}:build_static_int8", ("cpu",), _ORT_DEPS, "onnx",
           options=("per_channel", "isa"), description="ORTQuantizer static int8 (QDQ), calibrated", preload=_ORT_PRELOAD,
           compute="int8_onnxruntime"),
    # llama.cpp: one GGUF type per method, each built by llama_model_quantize from the model's GGUF.
    *(Recipe(quant, "llamacpp", f"{_LC}:build_{quant}", ("cpu",), _LC_DEPS, "llamacpp", description=about,
             compute=quant if quant in ("fp32", "bf16") else "ggml_quant", **_LC_FITS)
      for quant, about in _LC_METHODS.items()),
    # OpenVINO through optimum-intel: both tasks, exported from the checkpoint, CPU plugin.
    *(Recipe(quant, "openvino", f"{_OV}:build_{quant}", ("cpu",), _OV_DEPS, "openvino", options=options,
             description=about, preload=_OV_PRELOAD, compute=_OV_COMPUTE.get(quant, "fp32"),
             precision_option="inference_precision" if "inference_precision" in options else "")
      for quant, (options, about) in _OV_METHODS.items()),
)

_BY_KEY = {(r.quant, r.backend): r for r in RECIPES}

#: Backends whose variants are scored against another backend's fp32 (the model's one fp32
#: reference) instead of their own: llama.cpp reads the GGUF that PyTorch dequantizes, and
#: OpenVINO exports the checkpoint PyTorch loads, so each one's fp32 is itself a cross-runtime
#: check against PyTorch fp32.
QUALITY_REFERENCE_BACKEND = {"llamacpp": "pytorch", "openvino": "pytorch"}


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
