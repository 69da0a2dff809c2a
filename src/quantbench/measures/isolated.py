"""Peak memory of one variant, measured in a fresh worker process.

Inside the harness process, what earlier variants left on the heap (or freed and reused)
would shift every later figure. A spawned worker starts clean: it imports the libraries,
takes its baseline, builds the variant (artifacts come from the cache) and runs each batch
shape, on inputs the parent tokenized, under an RSS poller. The parent polls the pipe *and* the process,
so a worker that dies (import error, OOM kill, segfault) becomes a failed cell, never a hang.
Before it builds, the worker pins glibc's mmap and trim thresholds (``fix_malloc_thresholds``),
so its peaks count the tensors that were alive, not what glibc's adaptive heap kept.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Any

from quantbench import cache
from quantbench.cells import Cell
from quantbench.errors import QuantbenchError

MB = 1024 * 1024
#: Test hook: a worker that finds this variable set to its variant id kills itself.
CRASH_ENV = "QUANTBENCH_TEST_CRASH_WORKER"


class WorkerDied(QuantbenchError):
    """The memory worker ended without a result."""


def _measure(builder_name: tuple[str, str], source, settings, encodings: dict, passes: int,
             variant_id: str, new_tokens: dict[str, int], verified: dict[str, tuple]) -> dict[str, Any]:
    from quantbench import registry
    from quantbench.measures.memory import PeakRSS, fix_malloc_thresholds, release_memory, rss_bytes

    if os.environ.get(CRASH_ENV) == variant_id:
        os._exit(13)
    allocator = fix_malloc_thresholds()  # before the build allocates: see its docstring
    import gc

    # What the forkserver imported lives as long as this worker: freezing it out of the collector
    # makes each collection before a baseline cost milliseconds instead of 0.17 s (measured).
    gc.freeze()
    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    from quantbench.models import import_model_code

    cache.trust(verified)  # the parent hashed these artifacts moments ago
    builder = registry.recipe(*builder_name).load()
    # Modules load once per process, weights once per variant: the baseline holds the former.
    import_model_code(source, settings.task)
    import importlib

    for module in registry.recipe(*builder_name).requires:  # the runtime's libraries: in the baseline
        importlib.import_module(module)
    release_memory()
    baseline = rss_bytes()
    with PeakRSS() as build_peak:
        variant = builder(source, settings)
    peaks = {}
    with torch.inference_mode():
        for shape, encoding in encodings.items():
            inputs = variant.prepare(encoding)
            release_memory()
            with PeakRSS() as peak:
                # One generate already grows the KV cache to its full size; a forward pass is short.
                for _ in range(1 if new_tokens.get(shape) else passes):
                    if new_tokens.get(shape):  # generation: weights plus the KV cache it grows
                        variant.generate(inputs, new_tokens=new_tokens[shape])
                    else:
                        variant.forward(inputs)
                    variant.synchronize()
            peaks[shape] = round((peak.peak - baseline) / MB, 2)
    return {"baseline_mb": round(baseline / MB, 2), "build_peak_mb": round((build_peak.peak - baseline) / MB, 2),
            "peak_mb": peaks, "pid": os.getpid(), "allocator": allocator}


def _worker(conn, function, *args) -> None:
    """A worker's whole life: ``function(*args)`` sent back as ``("ok", result)``, or its failure as a reason."""
    try:
        conn.send(("ok", function(*args)))
    except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent as a reason
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    finally:
        conn.close()


BASE_PRELOAD = ("torch", "transformers", "transformers.modeling_utils", "quantbench.backends.base",
                "quantbench.measures.isolated")


def _context(preload: tuple[str, ...] = ()):
    """Workers fork from a server process that has only imported the heavy libraries: a clean
    heap like a fresh interpreter, without paying for the imports in every worker. The worker's
    baseline is taken after its imports either way, so preloading moves time, not memory figures.

    ``preload`` (the suite's modeling code and builders' libraries) only counts when the server
    starts, at the first worker of the run.
    """
    from quantbench import registry

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Missing optional modules are skipped by the forkserver (it ignores ImportError).
    # The runtimes' descriptions first: their log filters and telemetry opt-outs precede the libraries.
    context.set_forkserver_preload([*registry.description_modules(), *BASE_PRELOAD, *preload])
    return context


def start_server(preload: tuple[str, ...] = ()) -> None:
    """Start the workers' server now: its imports take seconds of one core, which can overlap
    the harness's own untimed set-up (resolving models, the first build) on the other cores."""
    context = _context(preload)
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def measure_in_worker(cell: Cell, source, settings, encodings: dict[str, dict], *, passes: int = 3,
                      timeout_s: float = 900.0, new_tokens: dict[str, int] | None = None,
                      preload: tuple[str, ...] = ()) -> dict[str, Any]:
    """Peak RSS over the worker's pre-build baseline for each named input of ``cell``'s variant.

    ``encodings`` maps a shape name (``"8x64"``) to tokenizer output; the worker gets the inputs
    ready-made, so it loads no dataset and no tokenizer. ``new_tokens`` names the shapes that
    generate (that many tokens per row) instead of running one forward pass. ``preload``: see
    ``_context``.
    """
    return run_in_worker(_measure, ((cell.quant, cell.backend), source, settings, encodings, passes, cell.variant_id,
                                   new_tokens or {}, cache.verified_entries()),
                         what=f"memory worker for {cell.variant_id}", timeout_s=timeout_s, preload=preload)


def run_in_worker(function, args: tuple, *, what: str, timeout_s: float, preload: tuple[str, ...] = ()) -> Any:
    """Run ``function(*args)`` (a module-level function) in a fresh worker and return its result.

    The parent polls the pipe *and* the process, so a worker that dies becomes a :class:`WorkerDied`
    naming ``what`` and its exit code, never a hang.
    """
    context = _context(preload)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(sender, function, *args), name=f"quantbench-{what.replace(' ', '-')}",
                              daemon=True)
    process.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if receiver.poll(0.2):
                try:
                    status, payload = receiver.recv()
                except EOFError:
                    status, payload = "died", None
                break
            if not process.is_alive():
                status, payload = ("died", None) if not receiver.poll(0) else receiver.recv()
                break
            if time.monotonic() > deadline:
                raise WorkerDied(f"{what} took over {timeout_s:.0f}s; killed")
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()
    if status == "died":
        raise WorkerDied(f"{what} died with exit code {process.exitcode} before reporting")
    if status == "error":
        raise WorkerDied(f"{what} failed: {payload}")
    return payload
