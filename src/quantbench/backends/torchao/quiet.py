"""torchao's import-time noise on a CPU build of torch, filtered by name, each with its reason.

* torchao loads every ``_C*.so`` it ships. Two hold CUDA kernels only (``_C_cutlass_90a``, CUTLASS for
  sm90a; ``_C_mxfp8``, MX fp8 GEMMs) and cannot load into a CPU build of torch: each failure is a
  warning at import. No CPU method uses them. On a CUDA build of torch a failure stays visible.
* torchao registers its own Enum types (``KernelPreference``, ``ScaleCalculationMode``) as pytree
  constants, and torch 2.13 logs that this is deprecated for Enums, which torch.compile now handles
  itself. The call is torchao's; only those Enums' lines are dropped.

Filters on the two loggers, added when the registry reads this runtime (before torchao is imported).
"""

from __future__ import annotations

import enum
import logging

CUDA_ONLY_LIBRARIES = ("_C_cutlass_90a", "_C_mxfp8")


class _CudaOnlyLibraryOnCpuTorch(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not (message.startswith("Failed to load ") and any(name in message for name in CUDA_ONLY_LIBRARIES)):
            return True
        import torch  # imported already: torchao is importing it

        return torch.version.cuda is not None


class _TorchaoEnumConstant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        cls = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (isinstance(cls, type) and issubclass(cls, enum.Enum)
                    and cls.__module__.split(".")[0] == "torchao" and "register_constant" in str(record.msg))


def install() -> None:
    for name, flt in (("torchao", _CudaOnlyLibraryOnCpuTorch()), ("torch.utils._pytree", _TorchaoEnumConstant())):
        logger = logging.getLogger(name)
        if not any(type(f) is type(flt) for f in logger.filters):
            logger.addFilter(flt)
