"""llama.cpp variants: the GGUF types, each made by ``llama_model_quantize`` from the source GGUF.

A method asks llama.cpp for one file type (``fp32`` = ALL_F32, ``q4_k_m`` = MOSTLY_Q4_K_M, ...)
and requantizes the model's source GGUF (``ModelSource.gguf``) to it, with
``allow_requantize``: the embedded model ships as Q4_1, so every type here starts from Q4_1
weights, as the PyTorch and ONNX Runtime variants start from them dequantized. ``gguf`` is the
file as shipped, not requantized.

Each file is cached under a key that hashes the source GGUF's bytes, the file type and the
library versions. Proof is the file itself (census.py): tensors counted per ggml type,
bits per weight, and every tensor llama.cpp wrote in a fallback type. A label is never looser
than the file: a quantized method whose file holds none of its type raises.

The variant (variant.py) runs on the CPU only, with the suite's thread count.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from pathlib import Path
from typing import Any

from quantbench import cache
from quantbench.backends.llamacpp import census as census_lib
from quantbench.backends.base import BuildInfo, BuildSettings, ModelSource, require_quantized
from quantbench.backends.llamacpp.variant import LlamaCppVariant, bindings
from quantbench.backends.runtime import method_builder
from quantbench.errors import QuantbenchError

#: method -> (llama_ftype suffix, the ggml type its tensors must be)
METHODS: dict[str, tuple[str, str]] = {
    "fp32": ("ALL_F32", "F32"),
    "bf16": ("MOSTLY_BF16", "BF16"),
    "q8_0": ("MOSTLY_Q8_0", "Q8_0"),
    "q6_k": ("MOSTLY_Q6_K", "Q6_K"),
    "q5_k_m": ("MOSTLY_Q5_K_M", "Q5_K"),
    "q5_0": ("MOSTLY_Q5_0", "Q5_0"),
    "q4_k_m": ("MOSTLY_Q4_K_M", "Q4_K"),
    "q4_0": ("MOSTLY_Q4_0", "Q4_0"),
    "iq4_nl": ("MOSTLY_IQ4_NL", "IQ4_NL"),
}
FILE_NAME = "model.gguf"
_digests: dict[tuple, str] = {}  # (path, size, mtime) -> sha256: a GGUF is hashed once per process


def _versions() -> dict[str, str | None]:
    out = {}
    for name in ("llama-cpp-python", "gguf"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _source_gguf(source: ModelSource) -> Path:
    if source.gguf is None or not Path(source.gguf).is_file():
        raise QuantbenchError(f"{source.name}: llama.cpp variants need the model's GGUF file, and the model "
                              f"source names none (ModelSource.gguf = {source.gguf})")
    return Path(source.gguf)


def _digest(path: Path) -> str:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = cache.file_sha256(path)
    return _digests[key]


def _pad_token_id(path: Path) -> int:
    """The pad id the harness pads with (pad, else EOS), read from the checkpoint's json files."""
    for name, key in (("generation_config.json", "pad_token_id"), ("config.json", "pad_token_id"),
                      ("config.json", "eos_token_id")):
        file = path / name
        value = json.loads(file.read_text()).get(key) if file.is_file() else None
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    raise QuantbenchError(f"{path}: the causal LM has neither a pad nor an EOS token id")


def _quantize(src: Path, out: Path, method: str, threads: int | None) -> None:
    lib = bindings()
    params = lib.llama_model_quantize_default_params()
    params.ftype = getattr(lib, f"LLAMA_FTYPE_{METHODS[method][0]}")
    params.allow_requantize = True  # the source is itself quantized (Q4_1 for the embedded model)
    params.nthread = int(threads or 0)
    status = lib.llama_model_quantize(str(src).encode(), str(out).encode(), params)
    if status != 0 or not out.is_file():
        raise QuantbenchError(f"{method}: llama_model_quantize({src.name} -> {METHODS[method][0]}) failed "
                              f"(status {status})")


def _entry(source: ModelSource, method: str, gguf: Path,
           threads: int | None) -> tuple[Path, dict[str, Any], bool, float]:
    """The cache entry of ``method`` built from ``gguf`` (built now if absent): entry, its census,
    whether it was cached, and the seconds its build took."""
    recipe = {"method": method, "ftype": METHODS[method][0] if method in METHODS else "as shipped"}
    entry = cache.entry_path("gguf", f"{source.name}-{method}-{cache.content_key(_digest(gguf), recipe, _versions())}")
    if cache.is_complete(entry):
        meta = cache.read_meta(entry)
        return entry, meta["census"], True, float(meta.get("build_seconds", 0.0))
    started = time.perf_counter()
    meta: dict[str, Any] = {"recipe": recipe, "source_gguf": gguf.name, "source_sha256": _digest(gguf),
                            "versions": _versions()}
    with cache.building(entry, meta) as scratch:
        if method in METHODS:
            _quantize(gguf, scratch / FILE_NAME, method, threads)
        # The census is kept in the marker: reading a GGUF's header takes seconds (the vocab).
        meta["census"] = census_lib.census(scratch / FILE_NAME if method in METHODS else gguf)
        meta["build_seconds"] = round(time.perf_counter() - started, 2)
    return entry, meta["census"], False, meta["build_seconds"]


def _proof(method: str, facts: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """quantized_layers and the quant_config facts of a file; raises where the label would lie."""
    wanted = METHODS[method][1] if method in METHODS else census_lib.shipped_type(facts)
    types = facts["ggml_types"]
    record = {"requested_type": wanted, "ggml_types": types, "bits_per_weight": facts["bits_per_weight"],
              "file_type": facts["file_type"], "fallbacks": census_lib.fallbacks(method, wanted, facts),
              "mix": census_lib.mix(wanted, facts)}
    if method == "fp32":
        if set(types) != {"F32"}:
            raise QuantbenchError(f"fp32: llama.cpp wrote {types}, not an all-F32 file")
        return 0, record
    if method == "bf16":
        return require_quantized(method, types.get("BF16", 0), "BF16 tensors"), record
    count = census_lib.quantized_count(facts)
    if method in METHODS:
        require_quantized(method, count, "tensors of a quantized ggml type")
        if not types.get(wanted):
            raise QuantbenchError(f"{method}: the file holds no {wanted} tensor ({types}); every tensor fell back")
    return count, record


def _build(method: str, source: ModelSource, settings: BuildSettings) -> LlamaCppVariant:
    if settings.device != "cpu":
        raise QuantbenchError(f"llama.cpp variants run on the CPU here, not {settings.device}")
    started = time.perf_counter()
    gguf = _source_gguf(source)
    entry, facts, cached, seconds = _entry(source, method, gguf, settings.threads)
    path = entry / FILE_NAME if method in METHODS else gguf
    count, proof = _proof(method, facts)
    flash_attn = False  # llama_cpp.Llama's default, which the bare-loop overhead check also runs
    library = f"llama.cpp (llama-cpp-python {_versions()['llama-cpp-python']})"
    config = {"method": method, "format": "gguf", "library": library, **proof,
              "llama_ftype": METHODS[method][0] if method in METHODS else None, "requantized": method in METHODS,
              "source_gguf": gguf.name, "threads": settings.threads or os.cpu_count(), "flash_attn": flash_attn,
              "kv_cache_type": "F16", "greedy": "argmax over llama.cpp's logits (no sampler)"}
    info = BuildInfo(disk_size_bytes=path.stat().st_size, param_count=int(facts["elements"]), quantized_layers=count,
                     quant_config=config, cached=cached, saved_seconds=round(seconds, 2) if cached else 0.0,
                     artifact=str(path))
    variant = LlamaCppVariant(path, quant=method, info=info, threads=settings.threads,
                              pad_token_id=_pad_token_id(Path(source.path)), flash_attn=flash_attn)
    info.build_seconds = time.perf_counter() - started
    return variant


build_fp32 = method_builder(_build, "fp32")
build_bf16 = method_builder(_build, "bf16")
build_q8_0 = method_builder(_build, "q8_0")
build_q6_k = method_builder(_build, "q6_k")
build_q5_k_m = method_builder(_build, "q5_k_m")
build_q5_0 = method_builder(_build, "q5_0")
build_q4_k_m = method_builder(_build, "q4_k_m")
build_q4_0 = method_builder(_build, "q4_0")
build_iq4_nl = method_builder(_build, "iq4_nl")
#: The source GGUF as shipped (its census cached like an artifact; the file is not copied).
build_gguf = method_builder(_build, "gguf")


def build_info() -> dict[str, Any]:
    """The llama.cpp build, for machine_info: version, system info, AMX, native flags if known."""
    lib = bindings()
    text = lib.llama_print_system_info().decode(errors="replace").strip()
    cmake_args = _cmake_args()
    native = None if cmake_args is None else "-DGGML_NATIVE=ON" in cmake_args.split()
    return {"llama_cpp_python": _versions()["llama-cpp-python"], "llama_cpp": _llama_version(lib),
            "system_info": text, "amx": "AMX" in text, "native": native, "cmake_args": cmake_args}


def _llama_version(lib) -> str | None:
    version = getattr(lib, "llama_version", None)
    try:
        return version().decode() if version else None
    except Exception:  # noqa: BLE001 - an older library without the symbol
        return None


def _cmake_args() -> str | None:
    """The CMAKE_ARGS scripts/install_llamacpp.sh built the installed wheel with: the script
    leaves them beside the wheel, and pip's direct_url.json says which wheel was installed."""
    try:
        url = json.loads(importlib.metadata.distribution("llama-cpp-python").read_text("direct_url.json") or "{}")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    location = str(url.get("url", ""))
    if not location.startswith("file://"):
        return None
    args = Path(location.removeprefix("file://")).parent / "CMAKE_ARGS"
    return args.read_text().strip() if args.is_file() else None
