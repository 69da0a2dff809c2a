"""What a run file says about the machine: hardware, threads and library versions."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import psutil

LIBRARIES = ("torch", "transformers", "onnxruntime", "bitsandbytes", "optimum", "optimum-onnx", "accelerate",
             "evaluate", "fairlearn", "datasets", "pytest-benchmark", "torchao", "gguf", "llama-cpp-python", "openvino", "optimum-intel", "nncf", "quantbench")


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
        "versions": {name: _version(name) for name in LIBRARIES},
        **_runtime_builds(),
    }


#: runtime -> (the module whose import means the run loaded it, the function that describes it)
_RUNTIMES = {"llama_cpp": ("llama_cpp", "quantbench.backends.llamacpp:build_info"),
             "openvino": ("openvino", "quantbench.backends.openvino:build_info")}


def _runtime_builds() -> dict[str, Any]:
    """How the runtimes this run loaded were built (llama.cpp: its CPU features and flags;
    OpenVINO: its version and the CPU plugin's default properties on this machine).

    Read only when the run imported them: machine info must not load a runtime of its own.
    """
    import importlib
    import sys

    out: dict[str, Any] = {}
    for key, (module, target) in _RUNTIMES.items():
        if module not in sys.modules:
            continue
        try:
            module_name, attr = target.split(":")
            out[key] = getattr(importlib.import_module(module_name), attr)()
        except Exception as exc:  # noqa: BLE001 - machine info is descriptive: say why it is missing
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return out
