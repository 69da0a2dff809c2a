"""llama.cpp through llama-cpp-python: GGUF types requantized from the model's GGUF file (build.py),
run by a low-level decode loop (variant.py), proved by a census of the file's tensor types
(census.py). This module only describes the runtime."""

from __future__ import annotations

from quantbench.backends.runtime import Kernel, Method, Runtime

_BUILD = "quantbench.backends.llamacpp.build"

#: method -> what it builds (each by llama_model_quantize from the model's GGUF; gguf: the file itself)
GGUF_METHODS = {
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

RUNTIME = Runtime(
    name="llamacpp",
    description="llama.cpp (llama-cpp-python): GGUF types, decoded by a low-level batch loop",
    # Causal LMs only, from their GGUF file; the bindings are compiled by scripts/install_llamacpp.sh.
    methods=tuple(Method(quant, f"{_BUILD}:build_{quant}", ("cpu",), about, preload=("llama_cpp",),
                         tasks=("text-generation",), needs_gguf=True,
                         compute="ggml", precision="bf16" if quant == "bf16" else "fp32")
                  for quant, about in GGUF_METHODS.items()),
    requires=("llama_cpp", "gguf"),
    extra="llamacpp",
    libraries=("llama-cpp-python", "gguf"),
    # Scored against PyTorch fp32: llama.cpp reads the GGUF that PyTorch dequantizes.
    quality_reference="pytorch",
    kernels=(Kernel("ggml", "", ("cpu",), unit="GOP/s",
                    unmeasured="llama.cpp's matmuls (ggml's own float and block-quantized dot products, weights "
                               "repacked per type, activations quantized to 8 bits inside ggml) have no stand-alone "
                               "kernel to time from Python: these cells carry achieved GFLOP/s and their decode "
                               "bandwidth share, no compute share"),),
    kv_cache_bytes=2,  # llama.cpp keeps its KV cache in f16 by default
    build_info=f"{_BUILD}:build_info",
    loaded_module="llama_cpp",
    # Served under load by llama-server (continuous batching over --parallel slots), not in process.
    serving="quantbench.backends.llamacpp.server:ADAPTER",
)
