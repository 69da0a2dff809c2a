"""This machine's limits, measured with the libraries the variants use, once per machine.

* **Compute:** dense square matmuls, best of several repetitions: torch fp32 and bf16
  (``torch.mm``), int8 through ``torch._int_mm`` (what torch's int8 kernels offer) and through
  ONNX Runtime's ``MatMulInteger`` (what the int8 ORT variants run), at the run's thread count.
* **Memory bandwidth:** a STREAM-style copy (2 x bytes) and triad ``a = b + s·c`` (3 x bytes) over
  arrays far larger than the last-level cache.

Each limit keeps its method, its size, every repetition, the spread and when it was measured.
The result is cached under the user cache, keyed by CPU/GPU model, threads and library
versions, so a sweep measures it about once per machine (about 10 s on 2 cores). The cache keeps
the highest peak seen and is measured again when it is old or a cell goes past it. On CUDA the
compute limits use CUDA events on device memory.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable

from quantbench import cache

MATMUL_N = 2048  # 17.2 GFLOP per fp32 matmul: long enough to time, short enough for 2 cores
STREAM_MB = 256  # per array; far above any CPU's last-level cache
REPEATS = 5
SCHEMA = 1


def _spread(name: str, values: list[float], unit: str, method: str, size: str) -> dict[str, Any]:
    """The peak is the best repetition; the median and the range say how steady it was."""
    return {"name": name, "peak": round(max(values), 3), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3), "unit": unit, "method": method,
            "size": size, "repetitions": [round(v, 3) for v in values]}


def _time(fn: Callable[[], Any], sync: Callable[[], None], repeats: int, *, device: str = "cpu") -> list[float]:
    """Seconds per repetition after a warm-up; on CUDA from CUDA events around each repetition."""
    fn()  # warm-up: allocation, kernel choice
    sync()
    out = []
    for _ in range(repeats):
        if device == "cuda":
            import torch

            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end) / 1000.0)
            continue
        started = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - started)
    return out


def _matmul_torch(dtype_name: str, n: int, repeats: int, device: str) -> dict[str, Any] | None:
    import torch

    from quantbench.hardware import devices

    dev = torch.device("cuda:0" if device == "cuda" else "cpu")
    sync = lambda: devices.synchronize(device)  # noqa: E731
    if dtype_name == "int8":
        if not hasattr(torch, "_int_mm"):
            return None
        a = torch.randint(-64, 64, (n, n), dtype=torch.int8, device=dev)
        b = torch.randint(-64, 64, (n, n), dtype=torch.int8, device=dev)
        try:
            seconds = _time(lambda: torch._int_mm(a, b), sync, repeats, device=device)
        except RuntimeError:  # no int8 GEMM kernel on this device/build
            return None
        method = "torch._int_mm (int8 x int8 -> int32)"
    else:
        dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype_name])
        a, b = (torch.randn(n, n, device=dev).to(dtype) for _ in range(2))
        seconds = _time(lambda: torch.mm(a, b), sync, repeats, device=device)
        method = f"torch.mm {dtype}"
    flops = 2 * n ** 3
    unit = "GOP/s" if dtype_name == "int8" else "GFLOP/s"
    return _spread(f"matmul_{dtype_name}", [flops / s / 1e9 for s in seconds], unit, method, f"{n}x{n}x{n}")


def _matmul_ort_int8(n: int, repeats: int, threads: int | None) -> dict[str, Any] | None:
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper

        from quantbench.backends.onnxruntime import session_options
    except ImportError:
        return None
    import onnxruntime as ort

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "int8-peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what every onnxruntime of this range reads
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(threads),
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    seconds = _time(lambda: session.run(None, feed), lambda: None, repeats)
    del onnx
    return _spread("matmul_int8_ort", [2 * n ** 3 / s / 1e9 for s in seconds], "GOP/s",
                   "onnxruntime MatMulInteger (uint8 x int8 -> int32)", f"{n}x{n}x{n}")


def _bandwidth(repeats: int, mb: int, device: str) -> list[dict[str, Any]]:
    import torch

    from quantbench.hardware import devices

    dev = torch.device("cuda:0" if device == "cuda" else "cpu")
    n = mb * 1024 * 1024 // 4
    a, b, c = (torch.ones(n, device=dev) for _ in range(3))
    sync = lambda: devices.synchronize(device)  # noqa: E731
    size = f"3 arrays of {mb} MB float32"
    copy = _time(lambda: a.copy_(b), sync, repeats, device=device)
    triad = _time(lambda: torch.add(b, c, alpha=3.0, out=a), sync, repeats, device=device)
    nbytes = n * 4
    return [_spread("bandwidth_copy", [2 * nbytes / s / 1e9 for s in copy], "GB/s",
                    "STREAM copy a = b (2 x bytes: read b, write a)", size),
            _spread("bandwidth_triad", [3 * nbytes / s / 1e9 for s in triad], "GB/s",
                    "STREAM triad a = b + 3·c (3 x bytes: read b, c, write a)", size)]


def measure_limits(*, device: str = "cpu", threads: int | None = None, matmul_n: int = MATMUL_N,
                   stream_mb: int = STREAM_MB, repeats: int = REPEATS) -> dict[str, Any]:
    import torch

    if threads and device == "cpu":
        torch.set_num_threads(threads)
    started = time.perf_counter()
    limits = [_matmul_torch("fp32", matmul_n, repeats, device), _matmul_torch("bf16", matmul_n, repeats, device),
              _matmul_torch("int8", matmul_n, repeats, device)]
    if device == "cpu":
        limits.append(_matmul_ort_int8(matmul_n, repeats, threads))
    limits += _bandwidth(repeats, stream_mb, device)
    return {"schema": SCHEMA, "device": device, "threads": torch.get_num_threads() if device == "cpu" else None,
            "limits": {entry["name"]: entry for entry in limits if entry},
            "seconds": round(time.perf_counter() - started, 2)}


def _key(device: str, threads: int | None) -> str:
    from quantbench.hardware.machine import cpu_model, gpu_name, machine_info

    versions = machine_info()["versions"]
    return cache.content_key(SCHEMA, cpu_model(), gpu_name() if device != "cpu" else None, device, threads,
                             {k: versions.get(k) for k in ("torch", "onnxruntime")})


#: Cached limits older than this are measured again (a kernel, BIOS or neighbour may have changed).
MAX_AGE_S = 7 * 24 * 3600


def _now() -> float:
    return time.time()


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def keep_highest(previous: dict[str, Any] | None, measured: dict[str, Any]) -> dict[str, Any]:
    """``measured`` with each limit replaced by the previous one where that peak was higher.

    A peak is what the machine *can* do: a measurement taken while something else ran is low,
    never high, so the highest one seen is the best estimate. Each limit keeps when it was
    measured."""
    merged = {**measured, "limits": dict(measured["limits"])}
    for name, entry in ((previous or {}).get("limits") or {}).items():
        current = merged["limits"].get(name)
        if current is None or float(entry["peak"]) > float(current["peak"]):
            merged["limits"][name] = entry
    return merged


def machine_limits(*, device: str = "cpu", threads: int | None = None, refresh: bool = False) -> dict[str, Any]:
    """This machine's limits for ``device`` and ``threads``: from the cache, or measured.

    Measured when there is no cache entry, when it is older than :data:`MAX_AGE_S`, or when
    ``refresh`` asks (a cell went past a cached peak); a new measurement is merged with the
    cached one by :func:`keep_highest`, so a busy moment never lowers a peak for good.
    """
    path = cache.cache_root() / "machine-limits" / f"{device}-{_key(device, threads)}.json"
    previous = json.loads(path.read_text()) if path.is_file() else None
    fresh = previous is not None and _now() - float(previous.get("measured_at_s", 0)) < MAX_AGE_S
    if fresh and not refresh:
        return {**previous, "cached": True}
    measured = measure_limits(device=device, threads=threads)
    now = _now()
    measured["measured_at_s"], measured["measured_at"] = now, _stamp(now)
    for entry in measured["limits"].values():
        entry["measured_at"] = measured["measured_at"]
    merged = keep_highest(previous, measured)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2))
    return {**merged, "cached": False}


def peak(limits: dict[str, Any] | None, name: str) -> float | None:
    entry = ((limits or {}).get("limits") or {}).get(name)
    return float(entry["peak"]) if entry else None
