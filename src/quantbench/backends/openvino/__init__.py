"""OpenVINO through optimum-intel: export to IR, NNCF weight compression and static int8, the CPU
plugin's precision set and read back (build.py). This module only describes the runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quantbench import isa
from quantbench.backends.openvino import telemetry
from quantbench.backends.runtime import Kernel, Method, Runtime

# Every path to OpenVINO in quantbench reads this module first (the registry's line), so declining
# here comes before NNCF or OpenVINO can build their telemetry object.
telemetry.decline()

_BUILD = "quantbench.backends.openvino.build"
PRELOAD = ("openvino", "optimum.intel.openvino.modeling", "optimum.intel.openvino.modeling_decoder")


@dataclass(frozen=True)
class KVCacheOptions:
    """bf16 fixes its inference precision; only the KV cache's may be set."""

    kv_cache_precision: Literal["f32", "bf16", "f16", "u8"] = "bf16"


@dataclass(frozen=True)
class PrecisionOptions:
    """The CPU plugin's runtime settings, set and read back (the record says what the plugin kept)."""

    inference_precision: Literal["f32", "bf16", "f16"] = "f32"
    dynamic_quantization_group_size: int = 0  # 0: off
    kv_cache_precision: Literal["f32", "bf16", "f16", "u8"] | None = None  # unset: the inference precision


@dataclass(frozen=True)
class Int4Options(PrecisionOptions):
    group_size: int = 64


def _method(quant: str, about: str, options: type | None = None, compute: str = "", precision: str = "fp32"
            ) -> Method:
    return Method(quant, f"{_BUILD}:build_{quant}", ("cpu",), about, options=options, preload=PRELOAD,
                  compute=compute, precision=precision, precision_option="inference_precision" if options in (
                      PrecisionOptions, Int4Options) else "")


RUNTIME = Runtime(
    name="openvino",
    description="OpenVINO through optimum-intel: IR export, NNCF weight-only and static int8, the CPU plugin",
    requires=("openvino", "nncf", "optimum.intel.openvino"),
    extra="openvino",
    libraries=("openvino", "optimum-intel", "nncf"),
    methods=(
        _method("fp32", "OpenVINO IR, float32 (f32 inference, f32 KV cache, no dynamic quantization)"),
        _method("bf16", "OpenVINO IR float32 run with the CPU plugin's bf16 inference", KVCacheOptions,
                precision="bf16"),
        _method("int8wo", "OpenVINO OVWeightQuantizationConfig(bits=8): int8 asymmetric per-channel weights, float "
                          "activations", PrecisionOptions),
        _method("int4wo", "OpenVINO OVWeightQuantizationConfig(bits=4): int4 symmetric weights in groups of "
                          "group_size (64), embeddings int8", Int4Options),
        _method("static_int8", "OpenVINO OVQuantizationConfig: int8 weights and activations (FakeQuantize), calibrated",
                PrecisionOptions, compute="int8_openvino"),
    ),
    # llama.cpp and OpenVINO variants are scored against PyTorch fp32, the model's one fp32 reference:
    # OpenVINO exports the checkpoint PyTorch loads, so its fp32 is a cross-runtime check.
    quality_reference="pytorch",
    model_classes={"text-classification": "optimum.intel:OVModelForSequenceClassification",
                   "text-generation": "optimum.intel:OVModelForCausalLM"},
    kernels=(Kernel("fp32_openvino", "quantbench.backends.openvino.kernels:f32_matmul", ("cpu",), ("openvino",)),
             Kernel("bf16_openvino", "quantbench.backends.openvino.kernels:bf16_matmul", ("cpu",), ("openvino",),
                    native_on=isa.BF16_NATIVE, emulated="the CPU plugin keeps f32 where bf16 is not native"),
             Kernel("int8_openvino", "quantbench.backends.openvino.kernels:int8_matmul", ("cpu",), ("openvino",),
                    unit="GOP/s")),
    # weight-only int8/int4 decompress into the plugin's float matmul, at the inference precision
    float_kernels={"fp32": "fp32_openvino", "bf16": "bf16_openvino"},
    drift_reference="quantbench.backends.openvino.drift:reference",
    build_info=f"{_BUILD}:build_info",
    loaded_module="openvino",
)
