"""GGUF models: a ``.gguf`` file as the source of every variant of a causal LM.

PyTorch and ONNX Runtime variants start from a transformers checkpoint: transformers reads the
GGUF through the ``gguf`` package and dequantizes every tensor to float, and that checkpoint is
saved once as safetensors, keyed by the file's content hash (later runs load it in a fraction
of a second instead of converting for ~20 s). llama.cpp variants start from the file itself.
So the "fp32" baseline of a GGUF model is its weights dequantized, not an original
full-precision checkpoint: :func:`baseline_note` says so in every record and card.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path

from quantbench import cache
from quantbench.errors import QuantbenchError

log = logging.getLogger(__name__)


def file_type(path: Path) -> str:
    """The GGUF's weight type as llama.cpp names it (``Q4_1``), from its ``general.file_type``."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(str(path))
    field = reader.fields.get("general.file_type")
    if field is None:
        return "unknown"
    value = int(field.parts[field.data[0]][0])
    try:
        return LlamaFileType(value).name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except ValueError:
        return f"type {value}"


def baseline_note(path: Path, kind: str) -> str:
    return f"fp32 = {path.name} ({kind} GGUF weights) dequantized to float32 by transformers, not an original checkpoint"


def _convert(gguf: Path, out_dir: Path) -> dict:
    if importlib.util.find_spec("gguf") is None:
        raise QuantbenchError("loading a GGUF file needs the 'gguf' package: pip install gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                 **_dequantize_kwargs())
    _drop_gguf_quantizer(model)
    # GGUF tokenizers often have no pad token; generation and batched scoring pad with eos (masked).
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return {"convert_seconds": round(time.perf_counter() - started, 2)}


def _dequantize_kwargs() -> dict:
    """transformers 5 keeps GGUF weights in their blocks unless told to unpack them; 4.57 always
    unpacks. Either way the checkpoint saved here is dense float32."""
    try:
        from transformers import GgufConfig
    except ImportError:  # transformers 4.x: no GGUF quantizer, the weights are always dequantized
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _drop_gguf_quantizer(model) -> None:
    """A dequantized model is plain float; transformers 5 still marks it GGUF-quantized and then
    refuses to save it. Remove the mark (and its config entry, so a reload is a plain load)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    if not getattr(quantizer.quantization_config, "dequantize", False):
        raise QuantbenchError("transformers kept the GGUF weights in quantized blocks; quantbench needs them "
                              "dequantized to float32 for the variants built from the float checkpoint")
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config


def dequantized_checkpoint(gguf: Path, *, entry_name: str, meta: dict) -> tuple[Path, dict]:
    """The transformers checkpoint of ``gguf`` (converted on first use, then cached) and its record."""
    if not gguf.is_file():
        raise QuantbenchError(f"GGUF file not found: {gguf}")
    digest = cache.file_sha256(gguf)
    entry = cache.entry_path("models", f"{entry_name}-{cache.content_key(digest, 'dequantized-fp32')}")
    if cache.is_complete(entry):
        return entry, {**cache.read_meta(entry), "cached": True}
    log.warning("quantbench: converting %s from GGUF once; cached at %s", gguf.name, entry)
    meta = {**meta, "gguf_file": gguf.name, "gguf_sha256": digest}
    with cache.building(entry, meta) as scratch:
        meta.update(_convert(gguf, scratch))
    return entry, {**meta, "cached": False}


def hub_gguf(repo_id: str, filename: str) -> Path:
    """A GGUF file of a hub repository, from the local Hugging Face cache (never downloaded offline)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename))
    except LocalEntryNotFoundError:
        raise QuantbenchError(f"hub id {repo_id!r}: {filename!r} is not in the local Hugging Face cache and the "
                              "hub cannot be reached (offline?)") from None
