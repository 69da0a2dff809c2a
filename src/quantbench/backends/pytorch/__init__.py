"""PyTorch: the checkpoint as transformers loads it, in float, torch.ao dynamic int8 and bitsandbytes.

The builders are in build.py, the kernel probes in kernels.py, the drift reference in drift.py;
this module only describes them (strings), so reading it imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quantbench import isa
from quantbench.backends import log_filters
from quantbench.backends.options import PER_TENSOR_DYNAMIC, LinearOptions
from quantbench.backends.runtime import DEVICES, Kernel, Method, Runtime

_BUILD = "quantbench.backends.pytorch.build"
_KERNELS = "quantbench.backends.pytorch.kernels"
BNB_DEPS = ("bitsandbytes", "accelerate")

# bitsandbytes 0.50, on a CPU with AVX512-BF16, asks the `kernels` package to download a 4-bit GEMM from
# the Hugging Face Hub, and logs a warning when it is not installed. quantbench runs offline and leaves
# `kernels` out on purpose (it pulls huggingface-hub 2.x), so bitsandbytes' own CPU kernel runs: expected.
log_filters.drop("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community",
                 reason="the hub-downloaded kernel is not wanted offline; bitsandbytes' own CPU kernel runs")


@dataclass(frozen=True)
class NF4Options:
    double_quant: bool = False
    compute_dtype: Literal["float32", "bfloat16", "float16"] = "float32"


@dataclass(frozen=True)
class BnbInt8Options:
    threshold: float = 6.0


METHODS = (
    Method("fp32", f"{_BUILD}:build_fp32", DEVICES, "unquantized float32 baseline"),
    Method("fp16", f"{_BUILD}:build_fp16", ("cuda", "mps"), "half precision", precision="fp16"),
    Method("bf16", f"{_BUILD}:build_bf16", ("cpu", "cuda"), "bfloat16", precision="bf16"),
    Method("dynamic_int8", f"{_BUILD}:build_dynamic_int8", ("cpu",),
           "torch.ao quantize_dynamic: int8 weights, activations quantized at run time", options=LinearOptions,
           batch_sensitive=PER_TENSOR_DYNAMIC, compute="int8_fbgemm",
           available="quantbench.backends.pytorch.torch_ao:missing"),
    Method("nf4", f"{_BUILD}:build_nf4", ("cpu", "cuda"), "bitsandbytes 4-bit NormalFloat", options=NF4Options,
           requires=BNB_DEPS, compute="nf4_bnb", precision_option="compute_dtype"),
    Method("bnb_int8", f"{_BUILD}:build_bnb_int8", ("cpu", "cuda"), "bitsandbytes LLM.int8()", options=BnbInt8Options,
           requires=BNB_DEPS, compute="int8_bnb",
           batch_sensitive="LLM.int8() keeps in float the feature columns where any row of the batch exceeds the "
                           "outlier threshold"),
)

KERNELS = (
    Kernel("fp32", f"{_KERNELS}:matmul_fp32"),
    Kernel("bf16", f"{_KERNELS}:matmul_bf16", ("cpu", "cuda"), native_on=isa.BF16_NATIVE,
           emulated="bf16 matmuls are converted to float32 or run by a reference loop"),
    Kernel("fp16", f"{_KERNELS}:matmul_fp16", ("cuda", "mps")),
    Kernel("int8_fbgemm", f"{_KERNELS}:dynamic_linear", ("cpu",), unit="GOP/s"),
    Kernel("int8_torch", f"{_KERNELS}:int_mm", ("cpu", "cuda"), unit="GOP/s", native_on=isa.INT8_VNNI,
           emulated="torch._int_mm runs a reference loop"),
    # bitsandbytes' own CPU paths, timed through its modules: NF4 is a fused bf16 kernel where the
    # CPU has AVX512-BF16 (whatever compute_dtype says), else dequantize and a float32 matmul;
    # LLM.int8() is torch._int_mm where torch reports AVX-512, else a float32 matmul of int8 values.
    Kernel("nf4_bnb", f"{_KERNELS}:nf4_linear", ("cpu", "cuda"), BNB_DEPS),
    Kernel("int8_bnb", f"{_KERNELS}:bnb_int8_linear", ("cpu", "cuda"), BNB_DEPS, unit="GOP/s"),
)

RUNTIME = Runtime(
    name="pytorch",
    description="transformers models in PyTorch: float, torch.ao dynamic int8, bitsandbytes NF4 and LLM.int8()",
    methods=METHODS,
    # torch, transformers and accelerate are core dependencies; bitsandbytes is the [bnb] extra.
    extra="bnb",
    libraries=("torch", "bitsandbytes", "accelerate"),
    kernels=KERNELS,
    drift_reference="quantbench.backends.pytorch.drift:reference",
)
