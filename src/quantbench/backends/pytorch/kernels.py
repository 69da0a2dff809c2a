"""PyTorch's compute kernels, as its cells run them, for the machine's limits (efficiency/limits.py).

* float GEMM: ``torch.mm`` in float32, bfloat16 or float16 (MKL/oneDNN on the CPU, cuBLAS on CUDA);
* fbgemm's dynamic int8 linear: a ``Linear`` quantized by ``torch.ao.quantization.quantize_dynamic``,
  exactly what the ``dynamic_int8`` cells run (int8 weights, activations quantized per call);
* ``torch._int_mm``: the int8 x int8 -> int32 GEMM torchao's ``int8dq`` calls on the CPU (and cuBLAS
  on CUDA). Without VNNI it runs a reference loop on x86 (1.4 GOP/s on a Zen 3).

Each probe returns None where the kernel does not exist on the device, and builds its operands
from fixed seeds.
"""

from __future__ import annotations

from quantbench.backends.runtime import Probe

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _device(device: str):
    import torch

    return torch.device("cuda:0" if device == "cuda" else device)


def _sync(device: str):
    from quantbench.hardware import devices

    return lambda: devices.synchronize(device)


def _float_mm(precision: str, n: int, device: str) -> Probe | None:
    import torch

    dtype = getattr(torch, _DTYPES[precision])
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(device=_device(device), dtype=dtype) for _ in range(2))
    return Probe(call=lambda: torch.mm(a, b), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}", method=f"torch.mm {dtype}",
                 sync=_sync(device), keep=(a, b))


def matmul_fp32(n: int, *, device: str, threads: int | None) -> Probe | None:
    return _float_mm("fp32", n, device)


def matmul_bf16(n: int, *, device: str, threads: int | None) -> Probe | None:
    return _float_mm("bf16", n, device)


def matmul_fp16(n: int, *, device: str, threads: int | None) -> Probe | None:
    return None if device == "cpu" else _float_mm("fp16", n, device)


def int_mm(n: int, *, device: str, threads: int | None) -> Probe | None:
    """``torch._int_mm`` (int8 x int8 -> int32), the GEMM torchao's dynamic int8 runs."""
    import torch

    if not hasattr(torch, "_int_mm"):
        return None
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randint(-64, 64, (n, n), generator=generator, dtype=torch.int8).to(_device(device))
            for _ in range(2))
    try:
        torch._int_mm(a[:32, :32], b[:32, :32])
    except RuntimeError:  # no int8 GEMM for this device or build
        return None
    return Probe(call=lambda: torch._int_mm(a, b), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method="torch._int_mm (int8 x int8 -> int32)", sync=_sync(device), keep=(a, b))


def dynamic_linear(n: int, *, device: str, threads: int | None) -> Probe | None:
    """One ``Linear(n, n)`` through ``quantize_dynamic`` on ``n`` rows: fbgemm's int8 GEMM with the
    per-call activation quantization the ``dynamic_int8`` cells pay too."""
    import torch

    if device != "cpu":
        return None
    from quantbench.backends.pytorch import torch_ao

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layer = torch.nn.Sequential(torch.nn.Linear(n, n)).eval()
        x = torch.randn(n, n)
    quantized = torch_ao.quantize_dynamic(layer, {torch.nn.Linear}, dtype=torch.qint8)

    def call():
        with torch.inference_mode():
            return quantized(x)

    return Probe(call=call, ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"torch.ao dynamic quantized Linear, qint8 weights (engine {torch.backends.quantized.engine})",
                 keep=(quantized, x))


def _bnb_layers(n: int, device: str):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        dense = torch.nn.Linear(n, n, bias=False)
        x = torch.randn(n, n)
    return dense.weight.data, x.to(_device(device))


def nf4_linear(n: int, *, device: str, threads: int | None) -> Probe | None:
    """A ``bitsandbytes.nn.Linear4bit`` (NF4, compute float32) on ``n`` rows, run as the ``nf4`` cells run it:
    on a CPU with AVX512-BF16 bitsandbytes repacks the weights and runs its fused bf16 kernel."""
    import bitsandbytes as bnb
    import torch

    weight, x = _bnb_layers(n, device)
    layer = bnb.nn.Linear4bit(n, n, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
    # eval(): bitsandbytes takes its fused CPU path only for a module out of training, as the cells' are
    layer = layer.to(_device(device)).eval()

    def call():
        with torch.inference_mode():
            return layer(x)

    fused = getattr(layer, "support_avx512bf16_for_cpu", False) and device == "cpu"
    return Probe(call=call, ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}", sync=_sync(device), keep=(layer, x),
                 method=f"bitsandbytes {bnb.__version__} Linear4bit NF4 "
                        f"({'fused NF4 x bf16 kernel (AVX512-BF16)' if fused else 'dequantize, then a float matmul'})")


def bnb_int8_linear(n: int, *, device: str, threads: int | None) -> Probe | None:
    """A ``bitsandbytes.nn.Linear8bitLt`` (LLM.int8(), threshold 6) on ``n`` rows, as the ``bnb_int8`` cells run it."""
    import bitsandbytes as bnb
    import torch

    weight, x = _bnb_layers(n, device)
    layer = bnb.nn.Linear8bitLt(n, n, bias=False, has_fp16_weights=False, threshold=6.0)
    layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    layer = layer.to(_device(device)).eval()

    def call():
        with torch.inference_mode():
            return layer(x)

    return Probe(call=call, ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}", sync=_sync(device), keep=(layer, x),
                 method=f"bitsandbytes {bnb.__version__} Linear8bitLt (LLM.int8(), threshold 6)")
