"""Proof of what a GGUF file holds: its tensors counted per ggml type, and the fallbacks.

A llama.cpp method's name is the type it asks for, not what the file holds. K-quants and the
256-block IQ types need rows that are a multiple of 256; where a tensor's rows are not,
llama.cpp quietly writes a 32-block type instead (``tensor_type_fallback`` in
llama-quant.cpp: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, ...). SmolLM2's rows of 576 make
most of a "q4_k_m" file Q5_0. This module reads the file with ``gguf.GGUFReader`` and says so.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

FLOAT_TYPES = frozenset({"F32", "F16", "BF16", "F64"})
K_BLOCK = 256  # QK_K: the block of the K-quants and of the 256-block IQ types
#: What llama.cpp writes when a 256-block type does not fit a tensor's rows, and what it wanted.
FALLBACK_FOR = {"Q5_0": "Q4_K", "Q5_1": "Q5_K", "Q8_0": "Q6_K", "Q4_0": "Q2_K/Q3_K", "IQ4_NL": "IQ1-IQ4_XS"}


def census(path: Path) -> dict[str, Any]:
    """Tensor counts per ggml type, row widths per type, element and byte totals of ``path``."""
    from gguf import GGUFReader, LlamaFileType

    reader = GGUFReader(str(path))
    types: Counter[str] = Counter()
    widths: dict[str, Counter[int]] = {}
    elements = tensor_bytes = 0
    for tensor in reader.tensors:
        kind = tensor.tensor_type.name
        types[kind] += 1
        widths.setdefault(kind, Counter())[int(tensor.shape[0])] += 1  # shape[0] is ne0: the row length
        elements += int(tensor.n_elements)
        tensor_bytes += int(tensor.n_bytes)
    field = reader.fields.get("general.file_type")
    file_type = LlamaFileType(int(field.parts[field.data[0]][0])).name if field is not None else None
    return {"ggml_types": dict(sorted(types.items())), "row_widths": {k: {str(w): n for w, n in sorted(v.items())}
                                                                      for k, v in sorted(widths.items())},
            "n_tensors": sum(types.values()), "elements": elements, "tensor_bytes": tensor_bytes,
            "bits_per_weight": round(tensor_bytes * 8 / elements, 4) if elements else None,
            "file_type": file_type}


def quantized_count(facts: dict[str, Any]) -> int:
    """Tensors stored in a quantized (non-float) ggml type."""
    return sum(n for kind, n in facts["ggml_types"].items() if kind not in FLOAT_TYPES)


def shipped_type(facts: dict[str, Any]) -> str:
    """The file's own type, e.g. "Q4_1" (from general.file_type, else its commonest quantized type)."""
    named = facts.get("file_type") or ""
    for prefix in ("MOSTLY_", "ALL_"):
        named = named.removeprefix(prefix)
    if named:
        return named
    quantized = {k: n for k, n in facts["ggml_types"].items() if k not in FLOAT_TYPES}
    return max(quantized, key=quantized.get) if quantized else "F32"


def _fallen(wanted: str, facts: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(type, row width, tensors) groups that are a fallback, not the type the method asked for.

    ``wanted`` is the method's own type: tensors of it are never a fallback. A 32-block type
    other than it, on rows that are not a multiple of 256, is the fallback of a 256-block type
    (the mix wanted Q6_K or a K-quant there). F16 in a quantized file means rows that fit no block.
    """
    groups = []
    for kind, widths in facts["row_widths"].items():
        for width, count in widths.items():
            if kind != wanted and ((kind in FALLBACK_FOR and int(width) % K_BLOCK)
                                   or (kind == "F16" and wanted not in FLOAT_TYPES)):
                groups.append((kind, width, count))
    return groups


def fallbacks(method: str, wanted: str, facts: dict[str, Any]) -> list[str]:
    """One line per group of tensors that llama.cpp wrote in another type than the method's."""
    total = quantized_count(facts)
    out = []
    for kind, width, count in _fallen(wanted, facts):
        if kind == "F16":
            out.append(f"{method}: {count} tensors stayed F16: rows of {width} fit no quantization block")
        else:
            out.append(f"{method}: {count} of {total} quantized tensors are {kind} (llama.cpp's fallback for "
                       f"{FALLBACK_FOR[kind]}): rows of {width} are not a multiple of {K_BLOCK}")
    return out


def mix(wanted: str, facts: dict[str, Any]) -> dict[str, int]:
    """Tensors of quantized types other than ``wanted`` that are llama.cpp's chosen mix, not a
    fallback (e.g. Q6_K for some ffn_down and attn_v tensors of a K_M file)."""
    out: Counter[str] = Counter()
    for kind, widths in facts["row_widths"].items():
        if kind not in FLOAT_TYPES and kind != wanted:
            out[kind] += sum(widths.values())
    for kind, _width, count in _fallen(wanted, facts):
        out[kind] -= count
    return {kind: n for kind, n in sorted(out.items()) if n > 0}
