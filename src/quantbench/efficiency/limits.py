"""This machine's limits: the peak of each kernel family the cells run, and memory bandwidth.

* **Compute, per kernel family.** A cell's share is taken against the kernel its matmuls run, so
  each family is timed with that very kernel (each runtime's ``Runtime.kernels``): float GEMM (``torch.mm``), fbgemm's
  dynamic int8 linear (torch.ao ``dynamic_int8``), ``torch._int_mm`` (torchao ``int8dq``), ONNX
  Runtime's ``MatMulInteger`` and OpenVINO's int8 matmul. A family whose CPU lacks its native
  instructions (bf16 without AVX512_BF16/AMX, ``_int_mm`` without VNNI) is marked *emulated*: it is
  timed on a small size and drawn as no roof. One that cannot be timed says why.
* **Bounded.** Each family gets about :data:`~.kernels.BUDGET_S` seconds (efficiency/kernels.py
  picks the size); a run measures only the families its cells need, plus fp32 and bandwidth.
* **Memory bandwidth:** a STREAM-style copy (2 x bytes) and triad ``a = b + s·c`` (3 x bytes) over
  arrays far larger than the last-level cache.

Records are cached under the user cache, keyed by the CPU (its model, ISA flags, family and
model number), the GPU, the threads and the library versions, so a machine measures about once;
a family missing from the cache is measured and added. The cache keeps the highest peak seen and
is measured again when old. A cell past its family's peak re-times that one family, once per run.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any, Callable, Iterable

from quantbench import cache, isa, registry
from quantbench.efficiency import kernels as kernels_mod
from quantbench.efficiency.kernels import time_kernel

STREAM_MB = 256  # per array; far above any CPU's last-level cache
REPEATS = 5
SCHEMA = 2
#: Cached limits older than this are measured again (a kernel, BIOS or neighbour may have changed).
MAX_AGE_S = 7 * 24 * 3600
#: Families every run measures: fp32 is every float cell's roof and the drift-free reference point.
ALWAYS = ("fp32",)

# This process's limits per (device, threads): read or measured once, then shared by every cell.
_MEMO: dict[tuple[str, int | None], dict[str, Any]] = {}
_REMEASURED: set[tuple[str, int | None, str]] = set()


def _cuda_timer(probe) -> float:
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    probe.call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0


def measure_kernel(name: str, *, device: str, threads: int | None, cpu_isa: dict[str, Any] | None = None,
                   budget_s: float | None = None) -> dict[str, Any]:
    """One family's limit entry: its peak, or ``peak: None`` with the reason it has none."""
    kernel = registry.kernel(name)
    entry: dict[str, Any] = {"name": kernel.limit, "kernel": kernel.name, "unit": kernel.unit}
    reason = kernel.missing(device)
    if reason is None:
        probe = kernel.load()
        try:
            timed = time_kernel(lambda n: probe(n, device=device, threads=threads), name=kernel.limit,
                                unit=kernel.unit, repeats=REPEATS, budget_s=budget_s or kernels_mod.BUDGET_S,
                                timer=_cuda_timer if device == "cuda" else None)
        except Exception as exc:  # noqa: BLE001 - a probe that breaks leaves this family without a peak, said why
            timed, reason = None, f"the probe failed: {type(exc).__name__}: {exc}"
        if timed is None and reason is None:
            reason = f"no {kernel.name} kernel runs on {device} here"
        entry.update(timed or {})
    if reason:
        entry.update(peak=None, unmeasured=reason)
    entry["emulated"] = kernel.emulated_here(device, cpu_isa)
    return entry


def _bandwidth(device: str, repeats: int = REPEATS, mb: int = STREAM_MB) -> list[dict[str, Any]]:
    import torch

    from quantbench.hardware import devices

    dev = torch.device("cuda:0" if device == "cuda" else device)
    n = mb * 1024 * 1024 // 4
    a, b, c = (torch.ones(n, device=dev) for _ in range(3))
    size = f"3 arrays of {mb} MB float32"
    nbytes = n * 4

    def timed(fn: Callable[[], Any]) -> list[float]:
        fn()
        devices.synchronize(device)
        out = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            devices.synchronize(device)
            out.append(time.perf_counter() - started)
        return out

    entries = []
    for name, fn, factor, method in (
            ("bandwidth_copy", lambda: a.copy_(b), 2, "STREAM copy a = b (2 x bytes: read b, write a)"),
            ("bandwidth_triad", lambda: torch.add(b, c, alpha=3.0, out=a), 3,
             "STREAM triad a = b + 3·c (3 x bytes: read b, c, write a)")):
        values = [factor * nbytes / s / 1e9 for s in timed(fn)]
        entries.append({"name": name, "peak": round(max(values), 3), "median": round(statistics.median(values), 3),
                        "min": round(min(values), 3), "max": round(max(values), 3), "unit": "GB/s",
                        "method": method, "size": size, "repetitions": [round(v, 3) for v in values]})
    return entries


def measure_limits(*, device: str = "cpu", threads: int | None = None, kernels: Iterable[str] | None = None,
                   bandwidth: bool = True, budget_s: float | None = None, stream_mb: int = STREAM_MB
                   ) -> dict[str, Any]:
    """Time ``kernels`` (default: every family that exists for ``device``) and the bandwidth."""
    import torch

    if threads and device == "cpu":
        torch.set_num_threads(threads)
    started = time.perf_counter()
    names = list(dict.fromkeys(kernels if kernels is not None else
                               (k.name for k in registry.kernels() if device in k.devices)))
    cpu_isa = isa.this_cpu() if device == "cpu" else None
    limits = {entry["name"]: entry for entry in
              (measure_kernel(name, device=device, threads=threads, cpu_isa=cpu_isa, budget_s=budget_s)
               for name in names)}
    if bandwidth:
        limits.update({entry["name"]: entry for entry in _bandwidth(device, mb=stream_mb)})
    return {"schema": SCHEMA, "device": device, "threads": torch.get_num_threads() if device == "cpu" else None,
            **({"isa": cpu_isa} if cpu_isa else {}), "limits": limits,
            "seconds": round(time.perf_counter() - started, 2)}


def cache_key(device: str, threads: int | None) -> str:
    """Machines with the same key share limits: same CPU model, ISA, GPU, threads and libraries."""
    from quantbench.hardware.machine import cpu_model, gpu_name, machine_info

    versions = machine_info()["versions"]
    cpu = isa.this_cpu()
    if device == "cpu" and not threads:  # the threads torch takes by default (OMP_NUM_THREADS, the cores)
        import torch

        threads = torch.get_num_threads()
    return cache.content_key(SCHEMA, cpu_model(), [cpu[f] for f in isa.TRACKED], cpu.get("family"), cpu.get("model"),
                             gpu_name() if device != "cpu" else None, device, threads,
                             {k: versions.get(k) for k in registry.kernel_libraries()})


def _now() -> float:
    return time.time()


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def keep_highest(previous: dict[str, Any] | None, measured: dict[str, Any]) -> dict[str, Any]:
    """``measured`` with each limit replaced by the previous one where that peak was higher.

    A peak is what the machine *can* do: a measurement taken while something else ran is low,
    never high, so the highest one seen is the best estimate. Limits measured before and not now
    are kept. Each limit keeps when it was measured."""
    merged = {**measured, "limits": dict(measured["limits"])}
    for name, entry in ((previous or {}).get("limits") or {}).items():
        current = merged["limits"].get(name)
        if current is None or float(entry.get("peak") or 0) > float(current.get("peak") or 0):
            merged["limits"][name] = entry
    return merged


def _path(device: str, threads: int | None):
    return cache.cache_root() / "machine-limits" / f"{device}-{cache_key(device, threads)}.json"


def _stamped(measured: dict[str, Any]) -> dict[str, Any]:
    now = _now()
    measured["measured_at_s"], measured["measured_at"] = now, _stamp(now)
    for entry in measured["limits"].values():
        entry["measured_at"] = measured["measured_at"]
    return measured


def _save(device: str, threads: int | None, record: dict[str, Any]) -> None:
    path = _path(device, threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


def machine_limits(*, device: str = "cpu", threads: int | None = None, kernels: Iterable[str] | None = None,
                   refresh: bool = False) -> dict[str, Any]:
    """This machine's limits for ``device`` and ``threads``, with every family in ``kernels``.

    Read from the cache when it holds them and is younger than :data:`MAX_AGE_S`; a family it lacks
    is measured and added; ``refresh`` measures them all again. A new measurement is merged with the
    cached one by :func:`keep_highest`, so a busy moment never lowers a peak for good.
    """
    wanted = list(dict.fromkeys([*ALWAYS, *(kernels or ())])) if kernels is not None else None
    path = _path(device, threads)
    previous = json.loads(path.read_text()) if path.is_file() else None
    if previous is not None and previous.get("schema") != SCHEMA:
        previous = None  # measured by another layout of the limits (schema 1 timed other kernels)
    fresh = previous is not None and _now() - float(previous.get("measured_at_s", 0)) < MAX_AGE_S
    have = set((previous or {}).get("limits") or {}) if fresh and not refresh else set()
    missing = [k for k in (wanted if wanted is not None else [k.name for k in registry.kernels()
                                                                 if device in k.devices])
               if registry.kernel(k).limit not in have]
    need_bandwidth = not {"bandwidth_copy", "bandwidth_triad"} <= have
    if not missing and not need_bandwidth:
        record = {**previous, "cached": True}
    else:
        measured = _stamped(measure_limits(device=device, threads=threads, kernels=missing, bandwidth=need_bandwidth))
        merged = keep_highest(previous if fresh else None, measured)
        if fresh and not refresh:  # an added family: the record's age stays that of its oldest part
            merged["measured_at_s"], merged["measured_at"] = previous["measured_at_s"], previous["measured_at"]
            merged["seconds"] = round(float(previous.get("seconds") or 0) + measured["seconds"], 2)
        _save(device, threads, merged)
        record = {**merged, "cached": not missing and not need_bandwidth,
                  "measured_now": [registry.kernel(k).limit for k in missing] + (
                      ["bandwidth_copy", "bandwidth_triad"] if need_bandwidth else [])}
    _MEMO[(device, threads)] = record
    return record


def current(device: str, threads: int | None) -> dict[str, Any] | None:
    """The limits this process read or measured for ``device`` and ``threads`` (None: none yet)."""
    return _MEMO.get((device, threads))


def ensure_kernel(name: str, *, device: str, threads: int | None) -> dict[str, Any]:
    """The limits with family ``name`` in them, measured now if this process's record lacks it."""
    record = _MEMO.get((device, threads))
    if record is not None and registry.kernel(name).limit in record["limits"]:
        return record
    names = [e["kernel"] for e in ((record or {}).get("limits") or {}).values() if e.get("kernel")]
    return machine_limits(device=device, threads=threads, kernels=[*names, name])


def remeasure_kernel(name: str, *, device: str, threads: int | None) -> dict[str, Any] | None:
    """Time family ``name`` again (a cell went past its peak), at most once per run and family; the
    result is merged by :func:`keep_highest`. None when it was already re-timed in this run."""
    if (device, threads, name) in _REMEASURED:
        return None
    _REMEASURED.add((device, threads, name))
    record = ensure_kernel(name, device=device, threads=threads)
    entry = _stamped({"limits": {registry.kernel(name).limit: measure_kernel(
        name, device=device, threads=threads, cpu_isa=isa.this_cpu() if device == "cpu" else None)}})
    merged = keep_highest(record, {**record, "limits": {**record["limits"], **entry["limits"]}})
    _save(device, threads, {k: v for k, v in merged.items() if k not in ("cached", "measured_now")})
    _MEMO[(device, threads)] = merged
    return merged


def peak(limits: dict[str, Any] | None, name: str) -> float | None:
    entry = ((limits or {}).get("limits") or {}).get(name)
    value = (entry or {}).get("peak")
    return float(value) if value else None


def entry(limits: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    return ((limits or {}).get("limits") or {}).get(name)
