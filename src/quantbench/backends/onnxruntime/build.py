"""ONNX Runtime variants: optimum-onnx exports the model, ORTQuantizer quantizes it.

The fp32 export and each quantized model are cached on disk under a key that hashes the
checkpoint, the method's settings, the calibration data and the library versions. A classifier
is timed through ``InferenceSession.run`` directly: the runtime itself, with no wrapper in the
way. A causal LM is exported with its KV cache and run through ``ORTModelForCausalLM``, whose
``generate`` feeds the cache back step by step (the same session options apply).
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from quantbench import cache
from quantbench.backends import hf, log_filters
from quantbench.backends.base import (BuildInfo, BuildSettings, CausalLMVariant, ModelSource, Variant,
                                      directory_size, require_quantized)
from quantbench.errors import QuantbenchError

ONNX_SUFFIXES = (".onnx", ".onnx_data", ".onnx.data")
# Ops that compute in integer arithmetic (QOperator format).
INTEGER_OPS = {"MatMulInteger", "QLinearMatMul", "QGemm", "QAttention", "QLinearConv", "ConvInteger",
               "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}
# Float ops that count as quantized when an input comes from DequantizeLinear (QDQ format).
QDQ_COMPUTE_OPS = {"MatMul", "Gemm", "Conv", "Attention", "Gather"}
ISAS = ("arm64", "avx2", "avx512", "avx512_vnni")


def _versions() -> dict[str, str]:
    names = ("onnxruntime", "optimum", "optimum-onnx", "transformers", "torch", "onnx")
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def detect_isa() -> str:
    """The quantization preset that matches this CPU (as optimum's AutoQuantizationConfig names them)."""
    if platform.machine().lower() in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


def count_quantized_ops(onnx_path: Path) -> tuple[int, dict[str, int]]:
    """Quantized compute ops in the graph, and a histogram of the quantization-related ops."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    count, histogram = 0, Counter()
    for node in graph.node:
        if node.op_type in INTEGER_OPS:
            count += 1
            histogram[node.op_type] += 1
        elif node.op_type in QDQ_COMPUTE_OPS and any(i in dequantized for i in node.input):
            count += 1
            histogram[f"QDQ:{node.op_type}"] += 1
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
            histogram[node.op_type] += 1
    return count, dict(sorted(histogram.items()))


#: Session config for every ORT variant. Idle pool threads otherwise spin after each ``run()``
#: and take both cores from whatever runs next: measured here, the drift reference took 15 ms
#: after an ORT round against 6.5 ms alone, and 7 ms with this set. Spinning *inside* a run is
#: kept, so a round's own latency is unchanged (bs1 5.3 vs 5.7 ms, bs8 29-30 ms either way).
SESSION_CONFIG = {"session.force_spinning_stop": "1"}


def session_options(threads: int | None):
    """The session options every quantbench ORT session uses (variants and the drift reference)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def device_unavailable(device: str) -> str | None:
    """Why ONNX Runtime cannot run on ``device`` here: CUDA needs the CUDA execution provider."""
    if device != "cuda":
        return None
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


class OrtVariant(Variant):
    backend = "onnxruntime"

    def __init__(self, onnx_path: Path, *, quant: str, device: str, threads: int | None, info: BuildInfo):
        import onnxruntime as ort

        options = session_options(threads)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise QuantbenchError(f"onnxruntime did not start on CUDA (providers: {self.session.get_providers()})")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.quant, self.device, self.info = quant, device, info
        self.threads = threads or "ort-default"  # unset: ONNX Runtime picks its own pool size

    def prepare(self, encoding: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(encoding[name], dtype=np.int64) for name in self.input_names}

    def forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, inputs)[0]

    def to_numpy(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        self.session = None


def _is_causal(settings: BuildSettings) -> bool:
    return hf.is_causal(settings)


def model_class(task: str):
    """The optimum ORTModel class that exports and runs a checkpoint of ``task``."""
    from quantbench.backends.onnxruntime import RUNTIME

    return RUNTIME.model_class(task)


def _export_fp32(source: ModelSource, settings: BuildSettings) -> tuple[Path, bool, float]:
    """The fp32 ONNX export of ``source`` for the task (cached); returns (dir, was_cached, seconds)."""
    # A causal LM's export (with KV cache) is another artifact; the classifier's key is unchanged.
    task_key = ("text-generation-with-past",) if _is_causal(settings) else ()
    entry = cache.entry_path("onnx", f"{source.name}-fp32-{cache.content_key(source.fingerprint, _versions(), *task_key)}")
    if cache.is_complete(entry):
        return entry, True, 0.0
    ort_class = model_class(settings.task)  # heavy; only to export
    started = time.perf_counter()
    meta = {"model": source.name, "fingerprint": source.fingerprint, "versions": _versions()}
    with cache.building(entry, meta) as out:
        extra = {"use_cache": True} if _is_causal(settings) else {}
        with log_filters.export_warnings_silenced():
            model = ort_class.from_pretrained(source.path, export=True, trust_remote_code=source.trust_remote_code,
                                              provider="CPUExecutionProvider", **extra)
        model.save_pretrained(out)
        del model
        meta["onnx_ops"] = _ops_record(out / "model.onnx")
    return entry, False, time.perf_counter() - started


def _causal_variant(onnx_path: Path, settings: BuildSettings, *, quant: str, info: BuildInfo) -> CausalLMVariant:
    from optimum.onnxruntime import ORTModelForCausalLM

    provider = "CUDAExecutionProvider" if settings.device == "cuda" else "CPUExecutionProvider"
    model = ORTModelForCausalLM.from_pretrained(onnx_path.parent, file_name=onnx_path.name, use_cache=True,
                                                provider=provider, session_options=session_options(settings.threads))
    if settings.device == "cuda" and model.providers[0] != "CUDAExecutionProvider":
        raise QuantbenchError(f"onnxruntime did not start on CUDA (providers: {model.providers})")
    pad = hf.pad_token_id(model)
    model.generation_config.pad_token_id = pad
    # Measured here: after a 2-token warm-up, the first 32-token round of an int8 graph at batch 1
    # decoded 6-20 % slower than the next ones (a cost paid at each new KV length); the
    # torch variants showed no such round. So ORT warms up on full-length rounds.
    return CausalLMVariant(model, quant=quant, backend="onnxruntime", device=settings.device, info=info,
                           pad_token_id=pad, full_length_warmup=True, threads=settings.threads or "ort-default")


def _ops_record(onnx_path: Path) -> dict[str, Any]:
    """The op count of a freshly built graph, for its cache marker."""
    count, histogram = count_quantized_ops(onnx_path)
    return {onnx_path.name: {"count": count, "histogram": histogram}}


def _quantized_ops(onnx_path: Path) -> tuple[int, dict[str, int]]:
    """The graph's quantized-op count: from its cache marker when the build recorded it (the entry's
    hashes vouch for the file), else counted (parsing a 500 MB graph takes about 2 s)."""
    recorded = cache.read_meta(onnx_path.parent).get("onnx_ops", {}).get(onnx_path.name)
    if recorded:
        return int(recorded["count"]), dict(recorded["histogram"])
    return count_quantized_ops(onnx_path)


def _variant(onnx_path: Path, source: ModelSource, settings: BuildSettings, *, quant: str, started: float,
             cached: bool, config: dict[str, Any], quantized: bool, saved_seconds: float = 0.0) -> Variant:
    count, histogram = _quantized_ops(onnx_path)
    if quantized:
        require_quantized(quant, count, "quantized ONNX ops")
    info = BuildInfo(disk_size_bytes=directory_size(onnx_path.parent, ONNX_SUFFIXES),
                     param_count=hf.logical_param_count(source.path), quantized_layers=count if quantized else 0,
                     quant_config={**config, "onnx_ops": histogram, "session_config": SESSION_CONFIG}, cached=cached, artifact=str(onnx_path),
                     saved_seconds=round(saved_seconds, 2),
                     build_seconds=time.perf_counter() - started)
    if _is_causal(settings):
        variant = _causal_variant(onnx_path, settings, quant=quant, info=info)
        info.build_seconds = time.perf_counter() - started
        return variant
    return OrtVariant(onnx_path, quant=quant, device=settings.device, threads=settings.threads, info=info)


def build_fp32(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    started = time.perf_counter()
    export_dir, cached, seconds = _export_fp32(source, settings)
    return _variant(export_dir / "model.onnx", source, settings, quant="fp32", started=started, cached=cached,
                    config={"method": "fp32", "format": "onnx"}, quantized=False,
                    saved_seconds=seconds if cached else 0.0)


def _calibration_dataset(split, source: ModelSource, seq_len: int):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    encoded = tokenizer(split.texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return Dataset.from_dict({k: v.tolist() for k, v in encoded.items()})


def _quantize(source: ModelSource, settings: BuildSettings, *, static: bool) -> OrtVariant:
    quant = "static_int8" if static else "dynamic_int8"
    started = time.perf_counter()
    isa = str(settings.options.get("isa") or detect_isa())
    if isa not in ISAS:
        raise QuantbenchError(f"method_options.{quant}.isa: {isa!r} is not one of {', '.join(ISAS)}")
    per_channel = bool(settings.options.get("per_channel", False))
    config: dict[str, Any] = {"method": quant, "library": "optimum-onnx ORTQuantizer", "isa": isa,
                              "per_channel": per_channel}
    if _is_causal(settings):
        config.update(task=settings.task, lm_head="quantized", embeddings="float",
                      note="ORTQuantizer quantizes every MatMul, lm_head included")
    if static:
        split = settings.calibration
        if split is None or len(split) == 0:
            raise QuantbenchError("static_int8 needs calibration data; the suite's calibration split is empty")
        config.update(calibration_method=settings.calibration_method, calibration_samples=len(split),
                      calibration_fingerprint=split.fingerprint(), calibration_seq_len=settings.seq_len)
    # The key holds everything that changes the artifact; optimum is imported only to build it.
    entry = cache.entry_path("onnx", f"{source.name}-{quant}-{cache.content_key(source.fingerprint, config, _versions())}")
    cached = cache.is_complete(entry)
    saved = 0.0
    if cached:
        meta = cache.read_meta(entry)
        config, saved = meta["config"], float(meta.get("build_seconds", 0.0))
    else:
        export_dir, _, export_seconds = _export_fp32(source, settings)
        meta = {"config": config, "versions": _versions()}
        with cache.building(entry, meta) as out:
            run = _run_decoder_static if static and _is_causal(settings) else _run_quantizer
            config.update(run(export_dir, out, source, settings, static=static, isa=isa, per_channel=per_channel),
                          export_seconds=round(export_seconds, 2))
            for name in ("config.json", "generation_config.json"):  # ORTModelForCausalLM reads them
                if (export_dir / name).is_file():
                    shutil.copy2(export_dir / name, out / name)
            meta["build_seconds"] = round(time.perf_counter() - started, 2)
            meta["onnx_ops"] = _ops_record(out / "model_quantized.onnx")
    return _variant(entry / "model_quantized.onnx", source, settings, quant=quant, started=started, cached=cached,
                    config=config, quantized=True, saved_seconds=saved)


def _run_quantizer(export_dir: Path, out: Path, source: ModelSource, settings: BuildSettings, *, static: bool,
                   isa: str, per_channel: bool) -> dict[str, Any]:
    """ORTQuantizer on the fp32 export (calibrating first when static); returns config facts."""
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoCalibrationConfig, AutoQuantizationConfig

    qconfig = getattr(AutoQuantizationConfig, isa)(is_static=static, per_channel=per_channel)
    quantizer = ORTQuantizer.from_pretrained(export_dir, file_name="model.onnx")
    ranges = None
    if static:
        dataset = _calibration_dataset(settings.calibration, source, settings.seq_len)
        calibration = {"minmax": AutoCalibrationConfig.minmax, "entropy": AutoCalibrationConfig.entropy,
                       "percentile": AutoCalibrationConfig.percentiles}[settings.calibration_method](dataset)
        ranges = quantizer.fit(dataset=dataset, calibration_config=calibration,
                               operators_to_quantize=qconfig.operators_to_quantize,
                               onnx_augmented_model_name=str(out / "augmented_model.onnx"))
        (out / "augmented_model.onnx").unlink(missing_ok=True)
    quantizer.quantize(save_dir=out, quantization_config=qconfig, calibration_tensors_range=ranges)
    return {"format": qconfig.format.name, "operators": list(qconfig.operators_to_quantize)}


class _DecoderCalibration:
    """Feeds a causal LM's ONNX graph one calibration text at a time, with an empty KV cache.

    optimum's ``ORTQuantizer.fit`` feeds only the columns of a ``datasets.Dataset``; a decoder
    with past_key_values inputs also needs position ids and zero-length cache tensors, which a
    Dataset cannot hold. So static calibration of a decoder calls ONNX Runtime's own
    ``quantize_static`` with this reader (the prefill pass: what the cache then starts from).
    """

    def __init__(self, onnx_path: Path, rows: list[list[int]]):
        import onnx

        graph = onnx.load(str(onnx_path), load_external_data=False).graph
        self.past = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input
                     if i.name.startswith("past_key_values")}
        self.names = {i.name for i in graph.input}
        self.rows = iter(rows)

    def get_next(self):
        row = next(self.rows, None)
        if row is None:
            return None
        ids = np.asarray([row], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None]}
        for name, (_, heads, _, head_dim) in self.past.items():
            feed[name] = np.zeros((1, heads, 0, head_dim), dtype=np.float32)
        return {k: v for k, v in feed.items() if k in self.names}


def _run_decoder_static(export_dir: Path, out: Path, source: ModelSource, settings: BuildSettings, *, static: bool,
                        isa: str, per_channel: bool) -> dict[str, Any]:
    """Static int8 (QDQ) for a causal LM: ONNX Runtime's quantize_static on calibration texts."""
    from onnxruntime.quantization import CalibrationMethod, quantize_static
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from transformers import AutoTokenizer

    qconfig = getattr(AutoQuantizationConfig, isa)(is_static=True, per_channel=per_channel)
    tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    bos = hf.bos_id(tokenizer)
    rows = [([bos] if bos is not None else []) + tokenizer(t, add_special_tokens=False)["input_ids"]
            for t in settings.calibration.texts]
    rows = [r[:settings.seq_len] for r in rows if len(r) > 1]
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[settings.calibration_method]
    quantize_static(str(export_dir / "model.onnx"), str(out / "model_quantized.onnx"),
                    _DecoderCalibration(export_dir / "model.onnx", rows), quant_format=qconfig.format,
                    op_types_to_quantize=list(qconfig.operators_to_quantize), per_channel=qconfig.per_channel,
                    reduce_range=qconfig.reduce_range, activation_type=qconfig.activations_dtype,
                    weight_type=qconfig.weights_dtype, calibrate_method=method)
    return {"format": qconfig.format.name, "operators": list(qconfig.operators_to_quantize),
            "library": "onnxruntime.quantization.quantize_static (decoder with KV-cache inputs)",
            "calibration_rows": len(rows)}


def build_dynamic_int8(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    return _quantize(source, settings, static=False)


def build_static_int8(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    return _quantize(source, settings, static=True)
