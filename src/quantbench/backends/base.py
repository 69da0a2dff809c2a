"""What every backend builds: a Variant, ready to run on pre-tokenized inputs.

A Variant keeps the input preparation (moving tensors to the device or to numpy) apart from
the forward pass, so the timed region holds the forward pass only.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
    baseline_note: str | None = None  # what "fp32" means when it is not the original weights (GGUF)
    gguf: Path | None = None  # the GGUF file the checkpoint came from (llama.cpp variants quantize from it)


@dataclass(frozen=True)
class BuildSettings:
    device: str
    threads: int | None
    options: dict[str, Any] = field(default_factory=dict)
    calibration: Any = None  # quantbench.data.Split, for static quantization
    calibration_method: str = "minmax"
    seq_len: int = 128
    measure_size: bool = True  # False in the memory worker: the size is measured in the harness
    task: str = "text-classification"  # quantbench.tasks name: picks the model class


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
    """A built variant of any task. ``threads``: the intra-op threads its timed call runs with, as
    its runtime was told (a count, or a name such as ``"ort-default"`` where the runtime decides)."""

    quant: str
    backend: str
    device: str
    info: BuildInfo
    threads: int | str

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


@runtime_checkable
class GenerativeVariant(Protocol):
    """What a causal LM variant adds to :class:`Variant`: what generation cells, LM scoring and the
    memory worker call. ``forward`` returns next-token logits for every position, (batch, tokens, vocab)."""

    pad_token_id: int
    full_length_warmup: bool  # a first call is slow at every new KV length: warm up on full rounds

    def generate(self, inputs: Any, *, new_tokens: int, logits_processor: Any = None) -> Any:
        """Greedy, KV cache on, exactly ``new_tokens`` new tokens per row; the new token ids. Each step's
        logits go through ``logits_processor`` (the step timer) as they arrive."""

    def logits_at(self, inputs: Any, positions: list[int]) -> Any:
        """Next-token logits of row ``i`` at position ``positions[i]``, shape (batch, vocab)."""


class TorchOutputs:
    """Shared by variants whose outputs are torch tensors (PyTorch models, ORTModel wrappers)."""

    device: str
    _threads: int | str | None = None

    @property
    def threads(self) -> int | str:
        """What the runtime was told: the variant's own setting, else torch's intra-op threads."""
        if self._threads is not None:
            return self._threads
        import torch

        return torch.get_num_threads()

    def to_numpy(self, logits: Any) -> np.ndarray:
        return logits.detach().float().cpu().numpy()

    def synchronize(self) -> None:
        from quantbench.hardware import devices

        devices.synchronize(self.device)

    def close(self) -> None:
        import gc

        self.model = None
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()


class TorchModelVariant(TorchOutputs, Variant):
    """A transformers torch model that returns ``.logits`` (a sequence classifier), for any runtime."""

    def __init__(self, model: Any, *, quant: str, backend: str, device: str, info: BuildInfo):
        import torch

        self.model, self.quant, self.backend, self.device, self.info = model.eval(), quant, backend, device, info
        self._torch_device = torch.device("cuda:0" if device == "cuda" else device)

    def prepare(self, encoding: dict[str, Any]) -> dict[str, Any]:
        import torch

        return {k: torch.as_tensor(np.asarray(v)).to(self._torch_device) for k, v in encoding.items()}

    def forward(self, inputs: dict[str, Any]) -> Any:
        return self.model(**inputs).logits


class CausalLMVariant(TorchOutputs, Variant):
    """A causal LM behind the transformers ``generate`` API: a torch model or an ORTModelForCausalLM.

    ``forward`` returns next-token logits for every position, shape (batch, tokens, vocab):
    the quality metrics read them. ``generate`` is what a generation cell times. Generation is
    greedy with ``min_new_tokens == max_new_tokens``, so every round makes the same tokens count.
    """

    task = "text-generation"

    def __init__(self, model: Any, *, quant: str, backend: str, device: str, info: BuildInfo, pad_token_id: int,
                 full_length_warmup: bool = False, threads: int | str | None = None):
        import torch

        self.model, self.quant, self.backend, self.device, self.info = model, quant, backend, device, info
        self.pad_token_id = pad_token_id
        self._threads = threads  # None: torch's intra-op threads (a torch model); a runtime of its own says
        # True where a first call is slow at every new KV-cache length, not only at the first
        # step: a warm-up must then generate all the tokens a round does.
        self.full_length_warmup = full_length_warmup
        self._torch_device = torch.device("cuda:0" if device == "cuda" else device)

    def prepare(self, encoding: dict[str, Any]) -> dict[str, Any]:
        import torch

        return {k: torch.as_tensor(np.asarray(v)).to(self._torch_device) for k, v in encoding.items()
                if k in ("input_ids", "attention_mask")}

    def forward(self, inputs: dict[str, Any]) -> Any:
        return self.model(**inputs).logits

    def logits_at(self, inputs: dict[str, Any], positions: list[int]) -> Any:
        """Next-token logits of row ``i`` at position ``positions[i]``, shape (batch, vocab).

        A transformers model computes its lm_head at these positions only (``logits_to_keep``
        with the batch's distinct positions): a quarter of SmolLM2's forward is the lm_head over
        49k words. A model without it (an ORT graph) computes every position, then is indexed.
        """
        import inspect

        import torch

        rows = torch.arange(len(positions))
        if "logits_to_keep" not in inspect.signature(self.model.forward).parameters:
            return torch.as_tensor(self.forward(inputs))[rows, torch.as_tensor(positions)]
        keep = sorted(set(positions))
        column = {p: i for i, p in enumerate(keep)}
        logits = self.model(**inputs, logits_to_keep=torch.as_tensor(keep, device=self._torch_device)).logits
        return logits[rows, torch.as_tensor([column[p] for p in positions])]

    def generate(self, inputs: dict[str, Any], *, new_tokens: int, logits_processor: Any = None,
                 stop_at_eos: bool = False) -> Any:
        """Greedy, KV cache on, exactly ``new_tokens`` new tokens per row; returns the new token ids.

        ``stop_at_eos`` (lm-eval's generate_until, never a timed cell) leaves the end-of-sequence
        token unsuppressed, as a served request does: rows may end early, and what follows a
        row's EOS is padding.
        """
        from transformers import LogitsProcessorList

        out = self.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=0 if stop_at_eos else new_tokens,
                                  do_sample=False,
                                  num_beams=1, use_cache=True, pad_token_id=self.pad_token_id,
                                  logits_processor=LogitsProcessorList(logits_processor or []))
        return out[:, inputs["input_ids"].shape[1]:]
