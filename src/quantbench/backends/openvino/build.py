"""OpenVINO variants through optimum-intel: fp32, bf16, int8/int4 weight compression, static int8.

**Artifacts.** ``OVModelForSequenceClassification`` / ``OVModelForCausalLM`` export the local
checkpoint to an fp32 OpenVINO IR (offline; no fp16 compression, no automatic 8-bit compression;
a causal LM is stateful, its KV cache inside the model). Every method builds from that IR with
optimum-intel's ``OVQuantizer`` (NNCF underneath):

* ``int8wo`` / ``int4wo``: ``OVWeightQuantizationConfig`` (8 bits asymmetric per channel; 4 bits
  symmetric in groups of ``group_size``, 64 by default since SmolLM2's 576-wide rows do not split
  into 128; a row the group does not divide is an error, never a silent adjustment);
* ``static_int8``: ``OVQuantizationConfig`` (int8 weights and FakeQuantize on activations),
  calibrated on the suite's calibration split only: a classifier on its texts padded to the
  model's ``max_seq_len`` (as ONNX Runtime's static_int8 is), a causal LM on the prefill pass of
  each text from BOS (NNCF resets the model's KV-cache state before each sample);
* ``fp32`` and ``bf16`` run the fp32 IR; ``bf16`` asks the CPU plugin for bf16 inference.

Each IR is cached under a key that hashes the checkpoint, the method's settings, the
calibration data and the library versions.

**Precision.** On a CPU with AVX-512 BF16 or AMX the CPU plugin runs bf16 by default, quantizes
activations dynamically (groups of 32) and keeps a u8 KV cache. So every variant sets
``INFERENCE_PRECISION_HINT``, ``DYNAMIC_QUANTIZATION_GROUP_SIZE``, ``KV_CACHE_PRECISION`` and
``INFERENCE_NUM_THREADS`` itself (method options; defaults f32, 0 = off, the KV cache at the
inference precision; threads from the suite), reads back what the compiled model took, and
counts what its runtime graph executes per precision. A variant whose compiled model does not
run what its label and options say (a bf16 op under an f32 hint, no bf16 op under a bf16 one, a
KV cache kept in another type, a property read back different from the one set) raises instead
of being timed; so does a property value the plugin refuses, in one line.

**Proof.** The IR as loaded is counted: weight constants stored compressed, per element type
(``i4``, ``u8``, ``i8``...), the weights of every MatMul and Gather by storage type, and the
FakeQuantize / FakeConvert nodes. A quantized label with no compressed weight raises
:class:`~quantbench.backends.base.QuantizationNotApplied`; an ``fp32`` IR with any compressed or
half-precision weight raises too.

A classifier is timed through its compiled model's infer request directly (the runtime, with no
wrapper in the way); a causal LM through ``OVModelForCausalLM.generate`` (transformers' loop, as
the PyTorch and ONNX Runtime variants are), whose steps the harness's step timer stamps.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from quantbench import cache
from quantbench.backends import hf, log_filters
from quantbench.backends.openvino import compile_guard
from quantbench.backends.base import (
    BuildInfo,
    BuildSettings,
    CausalLMVariant,
    ModelSource,
    QuantizationNotApplied,
    Variant,
    directory_size,
    require_quantized,
)
from quantbench.backends.runtime import method_builder
from quantbench.errors import QuantbenchError

METHODS = ("fp32", "bf16", "int8wo", "int4wo", "static_int8")
IR_SUFFIXES = (".xml", ".bin")
IR_FILE = "openvino_model.xml"
#: inference precisions the CPU plugin takes (INFERENCE_PRECISION_HINT), by the names it reads back
PRECISIONS = ("f32", "bf16", "f16")
KV_PRECISIONS = ("f32", "bf16", "f16", "u8")  # what the 2025.4 CPU plugin accepts
HALF = {"bf16", "f16"}
#: element types a compressed weight is stored in
LOW_BIT = {"i8", "u8", "i4", "u4", "nf4", "f4e2m1", "f8e4m3", "f8e5m2", "f8e8m0"}
FOUR_BIT = {"i4", "u4", "nf4", "f4e2m1"}
EIGHT_BIT = {"i8", "u8", "f8e4m3", "f8e5m2"}
#: ops between a stored weight and the MatMul/Gather that reads it (decompression, layout)
_WEIGHT_PATH = {"Convert", "Subtract", "Multiply", "Reshape", "Transpose", "Unsqueeze", "Squeeze",
                "FakeQuantize", "FakeConvert"}
#: runtime layer types counted per executed precision (what the CPU plugin actually runs)
_RUNTIME_LAYERS = ("FullyConnected", "MatMul", "Gather", "ScaledDotProductAttention", "Convolution", "RoPE",
                   "RMS", "MVN", "Eltwise", "Softmax")
#: compiled-model properties recorded with every variant
READ_BACK = ("INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION", "KEY_CACHE_PRECISION", "VALUE_CACHE_PRECISION",
             "DYNAMIC_QUANTIZATION_GROUP_SIZE", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT",
             "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "EXECUTION_DEVICES")
#: CPU plugin properties recorded in machine_info (the plugin's defaults on this machine)
PLUGIN_PROPERTIES = ("FULL_DEVICE_NAME", "DEVICE_ARCHITECTURE", "OPTIMIZATION_CAPABILITIES",
                     "INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION", "DYNAMIC_QUANTIZATION_GROUP_SIZE",
                     "INFERENCE_NUM_THREADS", "PERFORMANCE_HINT", "EXECUTION_MODE_HINT", "ENABLE_HYPER_THREADING",
                     "ENABLE_CPU_PINNING", "SCHEDULING_CORE_TYPE", "RANGE_FOR_STREAMS")
DEFAULT_GROUP_SIZE = 64


def _versions() -> dict[str, str | None]:
    out = {}
    for name in ("openvino", "optimum-intel", "nncf", "optimum", "transformers", "torch"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _is_causal(settings: BuildSettings) -> bool:
    return hf.is_causal(settings)


def _model_class(settings: BuildSettings):
    """optimum-intel's OVModel class for the task (the runtime's model_classes)."""
    from quantbench.backends.openvino import RUNTIME

    if settings.task not in RUNTIME.model_classes:
        raise QuantbenchError(f"openvino variants exist for {', '.join(RUNTIME.model_classes)}, not {settings.task!r}")
    return RUNTIME.model_class(settings.task)


def _value(value: Any) -> Any:
    """A property value as JSON: element types by their short name ('f32'), enums by name."""
    if hasattr(value, "get_type_name"):
        return value.get_type_name()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


# --- options ------------------------------------------------------------------------------------


def runtime_config(quant: str, options: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """The CPU plugin properties a method runs with, from its method options (one-line errors)."""
    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        value = options.get(key, default)
        if value not in allowed:
            raise QuantbenchError(f"method_options.{quant}.{key}: {value!r} is not one of {', '.join(allowed)}")
        return value

    # The KV cache defaults to the inference precision: the 2025.4 CPU plugin keeps it at bf16 under
    # bf16 inference whatever float type is asked (and at f32 under f32), so another default would
    # be a label the runtime does not follow (checked against what runs, see _check_runtime).
    if quant == "fp32":  # the label is the precision: no option may change it
        inference, group, kv = "f32", 0, "f32"
    elif quant == "bf16":
        inference, group, kv = "bf16", 0, choice("kv_cache_precision", KV_PRECISIONS, "bf16")
    else:
        inference = choice("inference_precision", PRECISIONS, "f32")
        kv = choice("kv_cache_precision", KV_PRECISIONS, inference)
        group = options.get("dynamic_quantization_group_size", 0)
        if not isinstance(group, int) or isinstance(group, bool) or group < 0:
            raise QuantbenchError(f"method_options.{quant}.dynamic_quantization_group_size: {group!r} is not an "
                                  "integer >= 0 (0 = off)")
    return {"INFERENCE_PRECISION_HINT": inference, "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(group),
            "KV_CACHE_PRECISION": kv, "INFERENCE_NUM_THREADS": str(int(threads or 0)),
            "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}


def _group_size(options: dict[str, Any]) -> int:
    value = options.get("group_size", DEFAULT_GROUP_SIZE)
    if not isinstance(value, int) or isinstance(value, bool) or not (value > 0 or value == -1):
        raise QuantbenchError(f"method_options.int4wo.group_size: {value!r} is not a positive integer "
                              "(or -1 for one group per row)")
    return value


# --- the IR census (proof) ----------------------------------------------------------------------


def _source_of(port) -> Any:
    return port.get_source_output().get_node()


def _stored_weight(node) -> Any | None:
    """The Constant a weight input comes from, through its decompression ops; None for an activation."""
    for _ in range(8):
        kind = node.get_type_name()
        if kind == "Constant":
            return node
        if kind not in _WEIGHT_PATH or node.get_input_size() == 0:
            return None
        node = _source_of(node.input(0))
    return None


def ir_census(model) -> dict[str, Any]:
    """What an ``openvino.Model`` stores: compressed weight constants per element type, the
    weights of every MatMul (input 1) and Gather (input 0) per storage type, FakeQuantize and
    FakeConvert nodes, and the float weights left uncompressed."""
    compressed: dict[str, set[str]] = {}
    float_weights: dict[str, set[str]] = {}
    float_bytes: dict[str, int] = {}  # constant name -> bytes, float weights only
    matmul, gather, fake = Counter(), Counter(), Counter()
    activations_quantized, last = 0, None
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("FakeQuantize", "FakeConvert"):
            fake[kind] += 1
            continue
        if kind not in ("MatMul", "Gather"):
            continue
        weight_port = 1 if kind == "MatMul" else 0
        constant = _stored_weight(_source_of(op.input(weight_port)))
        if constant is None or len(constant.get_output_partial_shape(0)) < 2:
            continue  # an activation x activation MatMul, or an index lookup
        etype = constant.get_output_element_type(0).get_type_name()
        (matmul if kind == "MatMul" else gather)[etype] += 1
        if kind == "MatMul":
            last = etype
        target = compressed if etype in LOW_BIT else float_weights
        target.setdefault(etype, set()).add(constant.get_friendly_name())
        if etype not in LOW_BIT:
            float_bytes[constant.get_friendly_name()] = int(constant.get_byte_size())
        if kind == "MatMul" and _source_of(op.input(0)).get_type_name() in ("FakeQuantize", "FakeConvert"):
            activations_quantized += 1
    return {"compressed_weights": {t: len(names) for t, names in sorted(compressed.items())},
            "float_weights": {t: len(names) for t, names in sorted(float_weights.items())},
            "matmul_weights": dict(sorted(matmul.items())), "gather_weights": dict(sorted(gather.items())),
            "fake_quantize": fake.get("FakeQuantize", 0), "fake_convert": fake.get("FakeConvert", 0),
            "matmuls_with_quantized_activations": activations_quantized,
            "float_weight_bytes": sum(float_bytes.values()),
            "last_matmul_weight": last}  # the output head (a causal LM's lm_head, a classifier's head)


def runtime_census(compiled) -> dict[str, Any]:
    """What the compiled model executes: counts of layer type per runtime precision, the KV-cache
    precision its attention runs with, and every op that runs in half precision."""
    layers: dict[str, Counter] = {}
    kv, half = Counter(), Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
        outputs = info["outputPrecisions"].astype(str) if "outputPrecisions" in info else ""
        if layer in _RUNTIME_LAYERS:
            layers.setdefault(layer, Counter())[precision] += 1
        if "kv_cache_precision" in info:
            kv[info["kv_cache_precision"].astype(str)] += 1
        if precision in HALF or HALF & set(outputs.split(",")):
            half[layer] += 1
    return {"layers": {k: dict(sorted(v.items())) for k, v in sorted(layers.items())},
            "kv_cache_precision": dict(kv), "half_precision_ops": dict(sorted(half.items()))}


def _proof(quant: str, ir: dict[str, Any]) -> int:
    """quantized_layers of an IR; raises where the label would not be the content."""
    compressed = ir["compressed_weights"]
    if quant in ("fp32", "bf16"):
        if compressed or set(ir["float_weights"]) - {"f32"}:
            raise QuantbenchError(f"{quant}: the exported IR is not float32: compressed weights {compressed}, "
                                  f"float weights {ir['float_weights']}")
        return 0
    if quant == "int8wo":
        count = sum(n for t, n in compressed.items() if t in EIGHT_BIT)
        require_quantized(quant, count, "weight constants stored in 8 bits")
        return count
    if quant == "int4wo":
        count = sum(n for t, n in compressed.items() if t in FOUR_BIT)
        require_quantized(quant, count, "weight constants stored in 4 bits")
        return count
    count = sum(n for t, n in compressed.items() if t in EIGHT_BIT)
    require_quantized(quant, count, "int8 weight constants")
    require_quantized(quant, ir["fake_quantize"] + ir["fake_convert"], "FakeQuantize nodes on activations")
    return count


def _check_runtime(quant: str, wanted: dict[str, str], properties: dict[str, Any], executed: dict[str, Any]) -> None:
    """Raise where the compiled model does not run what was asked (no silent bf16, no silent f32)."""
    for key in ("INFERENCE_PRECISION_HINT", "KV_CACHE_PRECISION", "DYNAMIC_QUANTIZATION_GROUP_SIZE"):
        if str(properties.get(key)) != wanted[key]:
            raise QuantbenchError(f"{quant}: {key} was set to {wanted[key]} but the compiled model reads back "
                                  f"{properties.get(key)}")
    kept = set(executed["kv_cache_precision"])  # empty for a model without a KV cache
    if kept and kept != {wanted["KV_CACHE_PRECISION"]}:
        raise QuantbenchError(f"{quant}: KV_CACHE_PRECISION {wanted['KV_CACHE_PRECISION']} was set, but the compiled "
                              f"model keeps its KV cache in {', '.join(sorted(kept))} (with "
                              f"{wanted['INFERENCE_PRECISION_HINT']} inference)")
    half = executed["half_precision_ops"]
    if wanted["INFERENCE_PRECISION_HINT"] == "f32" and half:
        raise QuantbenchError(f"{quant}: INFERENCE_PRECISION_HINT is f32 but the CPU plugin runs ops in half "
                              f"precision: {half}")
    if wanted["INFERENCE_PRECISION_HINT"] in HALF and not executed["layers"].get("FullyConnected", {}).get(
            wanted["INFERENCE_PRECISION_HINT"]) and not half:
        raise QuantizationNotApplied(f"{quant}: asked for {wanted['INFERENCE_PRECISION_HINT']} inference, but the "
                                     f"CPU plugin runs no op in it on this CPU ({executed['layers']})")


# --- building IRs --------------------------------------------------------------------------------


def _entry(source: ModelSource, settings: BuildSettings, recipe: dict[str, Any]) -> Path:
    key = cache.content_key(source.fingerprint, settings.task, recipe, _versions())
    return cache.entry_path("openvino", f"{source.name}-{recipe['method']}-{key}")


def _export_fp32(source: ModelSource, settings: BuildSettings) -> tuple[Path, bool, float]:
    """The fp32 IR of ``source`` for the task (cached); returns (entry, was_cached, build seconds)."""
    entry = _entry(source, settings, {"method": "fp32", "export": "stateful" if _is_causal(settings) else "default"})
    if cache.is_complete(entry):
        return entry, True, float(cache.read_meta(entry).get("build_seconds", 0.0))
    started = time.perf_counter()
    meta: dict[str, Any] = {"model": source.name, "fingerprint": source.fingerprint, "task": settings.task,
                            "versions": _versions()}
    extra = {"use_cache": True, "stateful": True} if _is_causal(settings) else {}
    with cache.building(entry, meta) as out:
        # load_in_8bit=False: optimum-intel compresses models over 1B parameters to int8 on export
        # unless told not to; compile=False: nothing runs here.
        # The id as a string: optimum-intel 1.27 calls str.replace on it when files are local.
        with _local_folder(), log_filters.export_warnings_silenced():
            model = _model_class(settings).from_pretrained(
                str(source.path), export=True, compile=False, load_in_8bit=False,
                trust_remote_code=source.trust_remote_code, local_files_only=True, **extra)
        model.save_pretrained(out)
        del model
        meta["build_seconds"] = round(time.perf_counter() - started, 2)
    return entry, False, meta["build_seconds"]


class _LocalFolderNotice(logging.Filter):
    """optimum-intel 1.27, offline, reads a local folder's name as a hub id, fails to find its hub
    cache entry and warns "Could not infer whether the model was already converted..." with a
    FileNotFoundError, then exports or loads the folder as asked. Only that warning is dropped:
    the folder is a local checkpoint or our IR, and a missing one fails the call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Could not infer whether the model was already converted")


@contextmanager
def _local_folder():
    logger, notice = logging.getLogger("optimum.intel.openvino.modeling_base"), _LocalFolderNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def _load_ir(folder: Path, settings: BuildSettings, *, ov_config: dict[str, str] | None, compile: bool):
    extra = {"use_cache": True} if _is_causal(settings) else {}
    with _local_folder():
        return _model_class(settings).from_pretrained(str(folder), ov_config=ov_config, compile=compile,
                                                      local_files_only=True, export=False, **extra)


def _calibration(quant: str, model, source: ModelSource, settings: BuildSettings) -> tuple[Any, dict[str, Any]]:
    """The calibration samples (model inputs) for static quantization, and what they were."""
    import nncf
    from transformers import AutoTokenizer

    split = settings.calibration
    if split is None or len(split) == 0:
        raise QuantbenchError(f"{quant}: static quantization needs calibration data; the suite's calibration "
                              "split is empty")
    tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=source.trust_remote_code)
    facts: dict[str, Any] = {"calibration_samples": len(split), "calibration_fingerprint": split.fingerprint(),
                             "calibration_seq_len": settings.seq_len}
    if _is_causal(settings):
        import torch

        bos = hf.bos_id(tokenizer)
        rows = [([bos] if bos is not None else []) + tokenizer(t, add_special_tokens=False)["input_ids"]
                for t in split.texts]
        rows = [r[:settings.seq_len] for r in rows if len(r) > 1]
        items = []
        for row in rows:
            ids = torch.as_tensor([row])
            inputs = model.prepare_inputs(input_ids=ids, attention_mask=torch.ones_like(ids))
            items.append({k: np.asarray(v) for k, v in inputs.items()})
        facts.update(calibration_rows=len(rows), calibration_inputs="the prefill pass of each text from BOS "
                     "(NNCF resets the KV-cache state before each sample)")
    else:
        encoded = tokenizer(split.texts, padding="max_length", truncation=True, max_length=settings.seq_len,
                            return_tensors="np")
        names = list(model.input_names)
        missing = [n for n in names if n not in encoded]
        if missing:
            raise QuantbenchError(f"{quant}: the tokenizer gives no {missing} for the model's inputs {names}")
        items = [{n: encoded[n][i:i + 1].astype(np.int64) for n in names} for i in range(len(split))]
        facts.update(calibration_rows=len(items), calibration_padding="max_length (as ONNX Runtime's static_int8)")
    return nncf.Dataset(items), facts


def _quantized_ir(quant: str, source: ModelSource, settings: BuildSettings) -> tuple[Path, bool, float, dict]:
    """The IR of a quantized method (cached): entry, was_cached, build seconds, recipe facts."""
    if quant == "int8wo":
        recipe: dict[str, Any] = {"method": quant, "config": "OVWeightQuantizationConfig", "bits": 8, "sym": False,
                                  "group_size": -1}
    elif quant == "int4wo":
        recipe = {"method": quant, "config": "OVWeightQuantizationConfig", "bits": 4, "sym": True,
                  "group_size": _group_size(settings.options), "ratio": 1.0, "group_size_fallback": "error"}
    else:
        split = settings.calibration
        if split is None or len(split) == 0:
            raise QuantbenchError(f"{quant}: static quantization needs calibration data; the suite's calibration "
                                  "split is empty")
        recipe = {"method": quant, "config": "OVQuantizationConfig", "bits": 8, "sym": False,
                  "calibration_fingerprint": split.fingerprint(), "calibration_samples": len(split),
                  "calibration_seq_len": settings.seq_len}
    entry = _entry(source, settings, recipe)
    if cache.is_complete(entry):
        meta = cache.read_meta(entry)
        return entry, True, float(meta.get("build_seconds", 0.0)), meta["recipe"]
    started = time.perf_counter()
    fp32_dir, _, export_seconds = _export_fp32(source, settings)
    meta: dict[str, Any] = {"versions": _versions()}
    with cache.building(entry, meta) as out:
        facts = _run_quantizer(quant, recipe, fp32_dir, out, source, settings)
        meta["recipe"] = {**recipe, **facts, "export_seconds": round(export_seconds, 2)}
        meta["build_seconds"] = round(time.perf_counter() - started, 2)
    return entry, False, meta["build_seconds"], meta["recipe"]


def _run_quantizer(quant: str, recipe: dict[str, Any], fp32_dir: Path, out: Path, source: ModelSource,
                   settings: BuildSettings) -> dict[str, Any]:
    from optimum.intel import (
        OVConfig,
        OVQuantizationConfig,
        OVQuantizer,
        OVWeightQuantizationConfig,
    )
    from optimum.intel.openvino.quantization import OVCalibrationDataset

    model = _load_ir(fp32_dir, settings, ov_config=None, compile=False)
    calibration = None
    facts: dict[str, Any] = {}
    if quant == "static_int8":
        dataset, facts = _calibration(quant, model, source, settings)
        config = OVQuantizationConfig(bits=8, sym=False, num_samples=facts["calibration_rows"])
        calibration = OVCalibrationDataset(dataset)
    else:
        kwargs = {"bits": recipe["bits"], "sym": recipe["sym"]}
        if quant == "int4wo":
            kwargs.update(group_size=recipe["group_size"], ratio=recipe["ratio"],
                          group_size_fallback=recipe["group_size_fallback"])
        config = OVWeightQuantizationConfig(**kwargs)
    try:
        OVQuantizer(model).quantize(calibration_dataset=calibration, ov_config=OVConfig(quantization_config=config),
                                    save_directory=out)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QuantbenchError(f"{quant}: OVQuantizer failed: {type(exc).__name__}: {first}") from exc
    return {**facts, "nncf_config": {k: v for k, v in config.to_dict().items()
                                     if v is not None and k not in ("dataset", "tokenizer", "processor")}}


# --- variants ------------------------------------------------------------------------------------


class OpenVINOClassifier(Variant):
    """A classifier's compiled model, run through one infer request (numpy in, numpy out)."""

    backend = "openvino"

    def __init__(self, compiled, *, quant: str, device: str, threads: int, info: BuildInfo):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.input_names = [i.get_any_name() for i in compiled.inputs]
        self.quant, self.device, self.threads, self.info = quant, device, threads, info

    def prepare(self, encoding: dict[str, Any]) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(encoding[name], dtype=np.int64) for name in self.input_names}

    def forward(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.request.infer(inputs, share_inputs=True)[0]  # a copy: the next call does not overwrite it

    def to_numpy(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float32)

    def close(self) -> None:
        self.request = self.compiled = None


def _compiled(model, settings: BuildSettings):
    """The compiled model behind an OVModel (a classifier holds it, a causal LM its infer request)."""
    return model.request if not _is_causal(settings) else model.request.get_compiled_model()


def _build(quant: str, source: ModelSource, settings: BuildSettings) -> Variant:
    if settings.device != "cpu":
        raise QuantbenchError(f"openvino variants run on the CPU plugin here, not {settings.device}")
    started = time.perf_counter()
    wanted = runtime_config(quant, settings.options, settings.threads)
    if quant in ("fp32", "bf16"):
        entry, cached, seconds = _export_fp32(source, settings)
        recipe: dict[str, Any] = {"method": quant, "weights": "float32 IR"}
    else:
        entry, cached, seconds, recipe = _quantized_ir(quant, source, settings)
    if wanted["INFERENCE_PRECISION_HINT"] == "bf16":
        crash = compile_guard.crash_reason(entry, wanted)
        if crash:  # the plugin's AMX bf16 kernels can kill the process (compile_guard.py): not here
            raise QuantbenchError(f"{quant}: OpenVINO's CPU plugin cannot compile this model in bf16 on this CPU "
                                  f"({crash}); the cell is not run, so the sweep goes on")
    try:
        model = _load_ir(entry, settings, ov_config=dict(wanted), compile=True)
    except Exception as exc:  # the plugin's reason (a property value it does not take) in one line
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise QuantbenchError(f"{quant}: the CPU plugin did not compile the model with {wanted}: "
                              f"{lines[-1] if lines else type(exc).__name__}") from exc
    ir = ir_census(model.model)
    count = _proof(quant, ir)
    compiled = _compiled(model, settings)
    properties = {key: _value(compiled.get_property(key)) for key in READ_BACK}
    executed = runtime_census(compiled)
    _check_runtime(quant, wanted, properties, executed)
    if quant == "bf16":  # proof of a precision, as PyTorch's bf16 counts its bf16 Linear layers
        count = require_quantized(quant, sum(executed["layers"].get(layer, {}).get("bf16", 0) for layer in
                                             ("FullyConnected", "MatMul", "Convolution")),
                                  "weight layers executed in bf16")
    precision = properties["INFERENCE_PRECISION_HINT"]
    threads = int(properties["INFERENCE_NUM_THREADS"] or 0) or os.cpu_count() or 1
    config = {"method": quant, "format": "openvino-ir", "library": f"optimum-intel {_versions()['optimum-intel']} / "
              f"openvino {_versions()['openvino']} / nncf {_versions()['nncf']}", "recipe": recipe,
              "inference_precision": precision,
              # what the attention keeps (a causal LM), else the property read back
              "kv_cache_precision": next(iter(executed["kv_cache_precision"]), properties["KV_CACHE_PRECISION"]),
              "dynamic_quantization_group_size": int(properties["DYNAMIC_QUANTIZATION_GROUP_SIZE"]),
              "compute_dtype": {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}.get(precision, precision),
              "requested": wanted, "compiled_properties": properties, "ir": ir, "executed": executed}
    disk = directory_size(entry, IR_SUFFIXES)
    if precision in HALF and ir["float_weight_bytes"]:
        # The plugin converts float32 weights to the half type when it compiles: each decode step
        # reads half their bytes, not the IR's (efficiency reads this instead of the disk size).
        config["runtime_weight_bytes"] = int(disk - ir["float_weight_bytes"] // 2)
    if _is_causal(settings):
        config.update(task=settings.task, stateful=bool(model.stateful), lm_head=ir["last_matmul_weight"])
    info = BuildInfo(disk_size_bytes=disk, param_count=hf.logical_param_count(source.path),
                     quantized_layers=count, quant_config=config, cached=cached,
                     saved_seconds=round(seconds, 2) if cached else 0.0, artifact=str(entry / IR_FILE))
    if _is_causal(settings):
        pad = hf.pad_token_id(model)
        model.generation_config.pad_token_id = pad
        # Measured here (SmolLM2 fp32, bs1): after a 2-token warm-up the first 32-token round decoded
        # 23 % slower than the next ones (32 vs 26 ms/token), as ONNX Runtime's do: warm up on full rounds.
        variant: Variant = CausalLMVariant(model, quant=quant, backend="openvino", device=settings.device, info=info,
                                           pad_token_id=pad, full_length_warmup=True, threads=threads)
    else:
        variant = OpenVINOClassifier(compiled, quant=quant, device=settings.device, threads=threads, info=info)
        del model  # the compiled model holds what runs
    info.build_seconds = time.perf_counter() - started
    return variant


build_fp32 = method_builder(_build, "fp32")
build_bf16 = method_builder(_build, "bf16")
build_int8wo = method_builder(_build, "int8wo")
build_int4wo = method_builder(_build, "int4wo")
build_static_int8 = method_builder(_build, "static_int8")


def build_info() -> dict[str, Any]:
    """The runtime for machine_info: versions and the CPU plugin's own defaults on this machine."""
    import openvino

    core = openvino.Core()
    plugin = {}
    for key in PLUGIN_PROPERTIES:
        try:
            plugin[key] = _value(core.get_property("CPU", key))
        except Exception as exc:  # noqa: BLE001 - an older plugin without the property
            plugin[key] = f"unavailable: {type(exc).__name__}"
    return {"openvino": openvino.get_version(), "optimum_intel": _versions()["optimum-intel"],
            "nncf": _versions()["nncf"], "cpu_plugin_defaults": plugin}
