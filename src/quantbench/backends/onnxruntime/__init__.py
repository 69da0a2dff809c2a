"""ONNX Runtime: optimum-onnx exports the checkpoint, ORTQuantizer quantizes it (build.py).

This module only describes the runtime (strings), so reading it imports neither optimum nor
onnxruntime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from quantbench.backends.options import PER_TENSOR_DYNAMIC
from quantbench.backends.runtime import Kernel, Method, Runtime

# ONNX Runtime 1.31 on Linux has 1DS telemetry (events to Microsoft's OneCollector) and keeps a device
# store in ~/.cache/Microsoft/DeveloperTools; this switch turns both off (no store is written with it).
# Set before any session is made, and inherited by the worker processes.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_BUILD = "quantbench.backends.onnxruntime.build"
#: optimum's modeling modules, imported lazily by the builders: memory workers preload them.
PRELOAD = ("optimum.onnxruntime.modeling_decoder", "optimum.onnxruntime.modeling")


@dataclass(frozen=True)
class QuantizerOptions:
    per_channel: bool = False
    # optimum's AutoQuantizationConfig preset; unset: the one that matches this CPU
    isa: Literal["arm64", "avx2", "avx512", "avx512_vnni"] | None = None


RUNTIME = Runtime(
    name="onnxruntime",
    description="ONNX Runtime through optimum-onnx: ONNX export, ORTQuantizer dynamic and static int8",
    requires=("onnxruntime", "optimum.onnxruntime"),
    extra="onnx",
    libraries=("onnxruntime", "optimum", "optimum-onnx"),
    methods=(
        Method("fp32", f"{_BUILD}:build_fp32", ("cpu", "cuda"), "ONNX export, float32", preload=PRELOAD),
        Method("dynamic_int8", f"{_BUILD}:build_dynamic_int8", ("cpu",), "ORTQuantizer dynamic int8 (QOperator)",
               options=QuantizerOptions, preload=PRELOAD, batch_sensitive=PER_TENSOR_DYNAMIC,
               compute="int8_onnxruntime"),
        Method("static_int8", f"{_BUILD}:build_static_int8", ("cpu",), "ORTQuantizer static int8 (QDQ), calibrated",
               options=QuantizerOptions, preload=PRELOAD, compute="int8_onnxruntime"),
    ),
    model_classes={"text-classification": "optimum.onnxruntime:ORTModelForSequenceClassification",
                   "text-generation": "optimum.onnxruntime:ORTModelForCausalLM"},
    kernels=(Kernel("fp32_onnxruntime", "quantbench.backends.onnxruntime.kernels:matmul_float", ("cpu",),
                    ("onnxruntime", "onnx")),
             Kernel("int8_onnxruntime", "quantbench.backends.onnxruntime.kernels:matmul_integer", ("cpu",),
                    ("onnxruntime", "onnx"), unit="GOP/s")),
    float_kernels={"fp32": "fp32_onnxruntime"},
    drift_reference="quantbench.backends.onnxruntime.drift:reference",
    device_check="quantbench.backends.onnxruntime.build:device_unavailable",
)
