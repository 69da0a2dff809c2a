"""What a run file says about the machine: hardware, threads and library versions."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import psutil

#: The libraries every run depends on; each runtime adds its own (``Runtime.libraries``).
CORE_LIBRARIES = ("torch", "transformers", "evaluate", "fairlearn", "datasets", "pytest-benchmark")


def libraries() -> tuple[str, ...]:
    """The distributions whose versions a run records, in a stable order (runtimes' in registry order)."""
    from quantbench import registry

    return tuple(dict.fromkeys((*CORE_LIBRARIES, *registry.libraries(), "quantbench")))


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if torch.backends.mps.is_available():
        return "Apple MPS"
    return None


def machine_info() -> dict[str, Any]:
    import torch

    from quantbench import isa

    return {
        "cpu_model": cpu_model(),
        "isa": isa.this_cpu(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "gpu": gpu_name(),
        "torch_threads": torch.get_num_threads(),
        "versions": {name: _version(name) for name in libraries()},
        **_runtime_builds(),
    }


def _runtime_builds() -> dict[str, Any]:
    """How the runtimes this run loaded were built (``Runtime.build_info``, keyed by the module whose
    import means the run loaded it: llama.cpp's CPU features and flags; OpenVINO's version and the
    CPU plugin's default properties on this machine).

    Read only when the run imported them: machine info must not load a runtime of its own.
    """
    import sys

    from quantbench import registry
    from quantbench.backends.runtime import load

    out: dict[str, Any] = {}
    for runtime in registry.runtimes():
        if not runtime.build_info or runtime.loaded_module not in sys.modules:
            continue
        try:
            out[runtime.loaded_module] = load(runtime.build_info)()
        except Exception as exc:  # noqa: BLE001 - machine info is descriptive: say why it is missing
            out[runtime.loaded_module] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
