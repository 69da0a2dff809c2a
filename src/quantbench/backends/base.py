"""What every backend builds: a Variant, ready to run on pre-tokenized inputs.

A Variant keeps the input preparation (moving tensors to the device or to numpy) apart from
the forward pass, so the timed region holds the forward pass only.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantbench.errors import QuantbenchError


class QuantizationNotApplied(QuantbenchError):
    """A build that quantized nothing: never benchmarked under a quantized label."""


@dataclass(frozen=True)
class ModelSource:
    """A checkpoint on disk, already resolved (embedded, local path or hub cache)."""

    name: str
    path: Path
    fingerprint: str  # content hash of config and weights: part of every artifact's cache key
    trust_remote_code: bool = False
    base_model: str | None = None


@dataclass(frozen=True)
class BuildSettings:
    device: str
    threads: int | None
    options: dict[str, Any] = field(default_factory=dict)
    calibration: Any = None  # quantbench.data.Split, for static quantization
    calibration_method: str = "minmax"
    seq_len: int = 128
    measure_size: bool = True  # False in the memory worker: the size is measured in the harness


@dataclass
class BuildInfo:
    """Facts about a built variant; they go into every record of its cells."""

    disk_size_bytes: int
    param_count: int
    quantized_layers: int
    quant_config: dict[str, Any]
    build_seconds: float = 0.0
    cached: bool = False
    saved_seconds: float = 0.0  # what building the cached artifact took when it was built
    artifact: str | None = None


class Variant(abc.ABC):
    quant: str
    backend: str
    device: str
    info: BuildInfo

    @abc.abstractmethod
    def prepare(self, encoding: dict[str, Any]) -> Any:
        """Turn tokenizer output (numpy arrays) into what ``forward`` takes, on the device."""

    @abc.abstractmethod
    def forward(self, inputs: Any) -> Any:
        """One forward pass; returns backend-native logits. This is what latency times."""

    @abc.abstractmethod
    def to_numpy(self, logits: Any) -> np.ndarray:
        """Logits as a float32 numpy array of shape (batch, labels)."""

    def synchronize(self) -> None:
        """Block until the device has finished queued work (GPU backends)."""

    def close(self) -> None:
        """Release what the variant holds, so the next variant's memory is measured alone."""

    def logits(self, encoding: dict[str, Any]) -> np.ndarray:
        return self.to_numpy(self.forward(self.prepare(encoding)))


def directory_size(path: Path, suffixes: tuple[str, ...] | None = None) -> int:
    """Bytes of the files under ``path`` (optionally only those with ``suffixes``)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            if suffixes is None or name.endswith(suffixes):
                total += os.path.getsize(os.path.join(root, name))
    return total


def require_quantized(quant: str, count: int, what: str) -> int:
    if count <= 0:
        raise QuantizationNotApplied(f"{quant}: the build quantized nothing (0 {what}); refusing to benchmark it as {quant}")
    return count
