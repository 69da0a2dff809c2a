"""torchao's import-time noise on a CPU build of torch, filtered by name, each with its reason.

* torchao loads every ``_C*.so`` it ships. Two hold CUDA kernels only (``_C_cutlass_90a``, CUTLASS for
  sm90a; ``_C_mxfp8``, MX fp8 GEMMs) and cannot load into a CPU build of torch: each failure is a
  warning at import. No CPU method uses them. On a CUDA build of torch a failure stays visible.
* torchao.kernel.intmm warns at import that Triton is missing. Triton compiles GPU kernels; a CPU build
  of torch has no use for it. On a CUDA build of torch the line stays.
* torchao registers its own Enum types (``KernelPreference``, ``ScaleCalculationMode``) as pytree
  constants, and torch 2.13 logs that this is deprecated for Enums, which torch.compile now handles
  itself. The call is torchao's; only those Enums' lines are dropped.
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import os

from quantbench.backends import log_filters

CUDA_ONLY_LIBRARIES = ("_C_cutlass_90a", "_C_mxfp8")


def _cpu_torch() -> bool:
    import torch  # imported already: torchao is importing it

    return torch.version.cuda is None


class _TorchaoEnumConstant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        cls = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (isinstance(cls, type) and issubclass(cls, enum.Enum)
                    and cls.__module__.split(".")[0] == "torchao" and "register_constant" in str(record.msg))


def install() -> None:
    spec = importlib.util.find_spec("torchao")  # found, not imported: the filters come first
    if spec is None or not spec.origin:
        return
    for library in CUDA_ONLY_LIBRARIES:
        log_filters.drop("torchao", f"Failed to load {os.path.join(os.path.dirname(spec.origin), library)}",
                         when=_cpu_torch, reason="a CUDA-only kernel library cannot load into a CPU build of torch")
    log_filters.drop("torchao.kernel.intmm", "Warning: Detected no triton", when=_cpu_torch,
                     reason="Triton compiles GPU kernels: nothing a CPU build of torch runs needs it")
    pytree = logging.getLogger("torch.utils._pytree")
    if not any(isinstance(f, _TorchaoEnumConstant) for f in pytree.filters):
        pytree.addFilter(_TorchaoEnumConstant())
