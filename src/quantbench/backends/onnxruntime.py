"""ONNX Runtime variants: optimum-onnx exports the model, ORTQuantizer quantizes it.

The fp32 export and each quantized model are cached on disk under a key that hashes the
checkpoint, the method's settings, the calibration data and the library versions. Timing
calls ``InferenceSession.run`` directly: the runtime itself, with no wrapper in the way.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from quantbench import cache
from quantbench.backends.base import (BuildInfo, BuildSettings, ModelSource, Variant, directory_size,
                                      require_quantized)
from quantbench.backends.pytorch import logical_param_count
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

    def prepare(self, encoding: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(encoding[name], dtype=np.int64) for name in self.input_names}

    def forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, inputs)[0]

    def to_numpy(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        self.session = None


def _export_fp32(source: ModelSource) -> tuple[Path, bool, float]:
    """The fp32 ONNX export of ``source`` (cached); returns (dir, was_cached, seconds)."""
    entry = cache.entry_path("onnx", f"{source.name}-fp32-{cache.content_key(source.fingerprint, _versions())}")
    if cache.is_complete(entry):
        return entry, True, 0.0
    from optimum.onnxruntime import ORTModelForSequenceClassification  # heavy; only to export
    started = time.perf_counter()
    with cache.building(entry, {"model": source.name, "fingerprint": source.fingerprint, "versions": _versions()}) as out:
        model = ORTModelForSequenceClassification.from_pretrained(
            source.path, export=True, trust_remote_code=source.trust_remote_code, provider="CPUExecutionProvider")
        model.save_pretrained(out)
        del model
    return entry, False, time.perf_counter() - started


def _variant(onnx_path: Path, source: ModelSource, settings: BuildSettings, *, quant: str, started: float,
             cached: bool, config: dict[str, Any], quantized: bool, saved_seconds: float = 0.0) -> OrtVariant:
    count, histogram = count_quantized_ops(onnx_path)
    if quantized:
        require_quantized(quant, count, "quantized ONNX ops")
    info = BuildInfo(disk_size_bytes=directory_size(onnx_path.parent, ONNX_SUFFIXES),
                     param_count=logical_param_count(source.path), quantized_layers=count if quantized else 0,
                     quant_config={**config, "onnx_ops": histogram, "session_config": SESSION_CONFIG}, cached=cached, artifact=str(onnx_path),
                     saved_seconds=round(saved_seconds, 2),
                     build_seconds=time.perf_counter() - started)
    return OrtVariant(onnx_path, quant=quant, device=settings.device, threads=settings.threads, info=info)


def build_fp32(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    started = time.perf_counter()
    export_dir, cached, seconds = _export_fp32(source)
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
        export_dir, _, export_seconds = _export_fp32(source)
        meta = {"config": config, "versions": _versions()}
        with cache.building(entry, meta) as out:
            config.update(_run_quantizer(export_dir, out, source, settings, static=static, isa=isa,
                                         per_channel=per_channel),
                          export_seconds=round(export_seconds, 2))
            meta["build_seconds"] = round(time.perf_counter() - started, 2)
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


def build_dynamic_int8(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    return _quantize(source, settings, static=False)


def build_static_int8(source: ModelSource, settings: BuildSettings) -> OrtVariant:
    return _quantize(source, settings, static=True)
