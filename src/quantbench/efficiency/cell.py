"""Per-cell efficiency: achieved FLOP/s and bytes/s, their share of this machine's peaks, intensity.

Which peak a cell is measured against is the kernel family its matmuls run (each runtime's ``Runtime.kernels``):
the recipe names it (fp32 for float methods and for weight-only methods that dequantize before
a float matmul, fbgemm's int8 linear for torch.ao dynamic int8, ``torch._int_mm`` for torchao
int8dq, MatMulInteger for ONNX Runtime int8, OpenVINO's int8 matmul), a bf16 or fp16 compute
precision set by the method's options moves a float method to that family, and a builder that
knows better records ``quant_config.compute_kernel`` (bitsandbytes LLM.int8(), whose CPU kernel
depends on the ISA). The record names the family and its peak; an emulated family (no native
instructions on this CPU) is flagged; a family with no measurable kernel gives no share, with
the reason. A share above 1 means the count or the peak is wrong: it raises
:class:`EfficiencyError` and is never recorded as a figure.
"""

from __future__ import annotations

from typing import Any

from quantbench import registry
from quantbench.efficiency import flops
from quantbench.efficiency.limits import entry, peak
from quantbench.errors import QuantbenchError

MB = 1024 * 1024


class EfficiencyError(QuantbenchError):
    """A share of a peak above 1: the FLOP count or the measured peak is wrong."""

    def __init__(self, message: str, *, kernel: str | None = None):
        super().__init__(message)
        self.kernel = kernel


def compute_kernel(quant: str, backend: str, quant_config: dict[str, Any] | None = None) -> str:
    """The kernel family a cell of (quant, backend), built as ``quant_config`` records, runs."""
    config = quant_config or {}
    if config.get("compute_kernel"):
        return str(config["compute_kernel"])
    recipe = registry.recipe(quant, backend)
    return recipe.compute_for(config) if recipe else "fp32"


def compute_peak_name(quant: str, backend: str, quant_config: dict[str, Any] | None = None) -> str:
    return registry.kernel(compute_kernel(quant, backend, quant_config)).limit


def _kv_bytes(quant: str, backend: str) -> int:
    """Bytes per cached key/value element: the runtime's own when it fixes one (``Runtime.kv_cache_bytes``),
    else the compute precision's."""
    fixed = registry.runtime(backend).kv_cache_bytes
    return fixed if fixed else (2 if quant in ("bf16", "fp16") else 4)


def bandwidth_peak(limits: dict[str, Any] | None) -> float | None:
    values = [v for v in (peak(limits, "bandwidth_copy"), peak(limits, "bandwidth_triad")) if v]
    return max(values) if values else None


def _share(cell: str, what: str, achieved: float, limit: float | None, kernel: str | None = None) -> float | None:
    if not limit:
        return None
    share = achieved / limit
    if share > 1.0:
        raise EfficiencyError(f"{cell}: {what} {achieved:.1f} is {share:.2f}x the measured peak {limit:.1f}"
                              f"{f' of {kernel}' if kernel else ''}: the count or the peak is wrong", kernel=kernel)
    return round(share, 4)


def cell_efficiency(*, config: dict[str, Any], task: str, params: dict[str, Any], extra_info: dict[str, Any],
                    limits: dict[str, Any] | None) -> dict[str, Any]:
    """Flat figures to merge into a latency or generation record's extra_info."""
    cell = str(extra_info.get("cell_id") or params)
    generation = task == "text-generation"
    shape = flops.shape_of(config, classifier=not generation)
    # The weights' bytes as they are read: the artifact's, unless the runtime converts them when it
    # loads (OpenVINO's bf16 inference on a float32 IR states runtime_weight_bytes).
    runtime_bytes = (extra_info.get("quant_config") or {}).get("runtime_weight_bytes")
    weight_bytes = float(runtime_bytes) if runtime_bytes else float(extra_info["disk_size_mb"]) * MB
    kernel = compute_kernel(params["quant"], params["backend"], extra_info.get("quant_config"))
    peak_name = registry.kernel(kernel).limit
    compute_peak = peak(limits, peak_name)
    measured = entry(limits, peak_name) or {}
    batch = int(params["batch_size"])
    out: dict[str, Any] = {"compute_peak": peak_name, "compute_peak_gflops": compute_peak}
    if measured.get("emulated"):
        out["compute_peak_emulated"] = measured["emulated"]
    if compute_peak is None:
        out["compute_peak_note"] = measured.get("unmeasured") or f"{peak_name} was not measured on this machine"
    if not generation:
        total = flops.encoder_flops(shape, batch=batch, seq=int(params["seq_len"]))
        seconds = float(extra_info["latency_ms"]["p50"]) / 1000
        achieved = total / seconds / 1e9
        out.update(flops_per_call=total, achieved_gflops=round(achieved, 3),
                   compute_share=_share(cell, "achieved GFLOP/s", achieved, compute_peak, peak_name),
                   arithmetic_intensity=round(total / weight_bytes, 3))
        return out
    prompt, new = int(params["prompt_len"]), int(params["new_tokens"])
    prefill, decode = flops.generate_flops(shape, batch=batch, prompt=prompt, new_tokens=new)
    seconds = float(extra_info["latency_ms"]["p50"]) / 1000
    achieved = (prefill + decode) / seconds / 1e9
    prefill_achieved = prefill / (float(extra_info["ttft_p50_ms"]) / 1000) / 1e9
    out.update(flops_per_call=prefill + decode, achieved_gflops=round(achieved, 3),
               compute_share=_share(cell, "achieved GFLOP/s", achieved, compute_peak, peak_name),
               prefill_flops=prefill, prefill_gflops=round(prefill_achieved, 3),
               prefill_compute_share=_share(cell, "prefill GFLOP/s", prefill_achieved, compute_peak, peak_name),
               arithmetic_intensity=round(prefill / weight_bytes, 3))
    if new > 1 and extra_info.get("tpot_p50_ms"):
        tpot = float(extra_info["tpot_p50_ms"]) / 1000
        context = prompt + new / 2  # the mean context over the decode steps
        kv_bytes = flops.kv_cache_bytes_read(shape, batch=batch, context=round(context),
                                             bytes_per_element=_kv_bytes(params["quant"], params["backend"]))
        step_bytes = weight_bytes + kv_bytes  # every weight is read once per step, for the whole batch
        step_flops = decode / (new - 1)
        bandwidth = step_bytes / tpot / 1e9
        out.update(decode_gflops=round(step_flops / tpot / 1e9, 3),
                   decode_compute_share=_share(cell, "decode GFLOP/s", step_flops / tpot / 1e9, compute_peak, peak_name),
                   decode_bytes_per_token=round(step_bytes / batch), decode_bandwidth_gbs=round(bandwidth, 3),
                   bandwidth_peak_gbs=bandwidth_peak(limits),
                   bandwidth_share=_share(cell, "decode GB/s", bandwidth, bandwidth_peak(limits)),
                   decode_arithmetic_intensity=round(step_flops / step_bytes, 3))
    return out
