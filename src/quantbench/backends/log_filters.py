"""Library log lines and warnings a sweep should not print, dropped by name and message, each with its reason.

A runtime installs its own when the registry reads it (worker processes read every runtime first,
measures/isolated.py), so the filter is in place before the library is imported. Only the named
line goes: anything else the library logs still shows.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Callable, Iterator


class DropLine(logging.Filter):
    def __init__(self, starts_with: str, reason: str, when: Callable[[], bool] | None = None) -> None:
        super().__init__()
        self.starts_with, self.reason, self.when = starts_with, reason, when

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(self.starts_with):
            return True
        return self.when is not None and not self.when()


def drop(logger: str, starts_with: str, *, reason: str, when: Callable[[], bool] | None = None) -> None:
    """Drop ``logger``'s lines that start with ``starts_with`` (only while ``when()`` holds, if given)."""
    target = logging.getLogger(logger)
    if not any(isinstance(f, DropLine) and f.starts_with == starts_with for f in target.filters):
        target.addFilter(DropLine(starts_with, reason, when))


#: (category name, message regex, module regex, reason) of the warnings a TorchScript export of a
#: transformers checkpoint raises every time, whatever the model: expected, so not shown.
EXPORT_WARNINGS = (
    ("DeprecationWarning", r"You are using the legacy TorchScript-based ONNX export", r"optimum\.",
     "optimum-onnx 0.1.0 exports with the TorchScript exporter; it does not support torch.export's for these models"),
    ("DeprecationWarning", r"The feature will be removed\. Please remove usage of this function", r"torch\.onnx\.",
     "torch's TorchScript ONNX exporter, which optimum-onnx 0.1.0 calls, warns about its own logging set-up"),
    ("DeprecationWarning", r"`torch\.jit\.trace(_method)?` is deprecated", r"torch\.jit\.",
     "optimum-intel 1.27 traces the model with torch.jit for OpenVINO's converter, which torch 2.13 deprecates"),
    ("TracerWarning", r"torch\.tensor results are registered as constants in the trace", r"transformers\.",
     "transformers' attention-mask helper builds the constant 1.0 with torch.tensor: a constant is right"),
)


@contextlib.contextmanager
def export_warnings_silenced() -> Iterator[None]:
    """Around an export (ONNX, OpenVINO IR): the warnings of :data:`EXPORT_WARNINGS`, and only those."""
    import torch

    categories = {"DeprecationWarning": DeprecationWarning, "TracerWarning": torch.jit.TracerWarning}
    with warnings.catch_warnings():
        for category, message, module, _reason in EXPORT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=categories[category], module=module)
        yield
