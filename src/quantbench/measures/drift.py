"""The drift reference: a fixed workload timed between a cell's rounds, so a gate can tell a
slower machine from a slower variant.

Shared machines change speed under the harness. On the 2-core CI VM, the same cell moved by
up to 80 % between back-to-back sweeps, and the whole machine by 23 % between one minute and
the next. Timed a fraction of a second before each round of a loop, the reference followed it:
round / reference held within ±5 % over 30 s in two processes while the rounds moved by up to 2×.
Over whole sweeps, the reference's median move across cells matched the cells' median move
within 5 points in six back-to-back pairs (x0.90 against x0.95 at worst); a single cell's own
reference followed that cell less well, which is why the gate divides by the median over cells
and adds a noise floor (gate/drift.py).

The workload is fixed: a one-layer BERT with seeded random weights for PyTorch cells, two seeded
feed-forward blocks in ONNX Runtime for ORT cells (the same blocks compiled by OpenVINO's CPU
plugin for OpenVINO cells), in fp32 on the cell's device and threads. No
code under test runs in it, so a slower variant moves the ratio and a slower machine does not.
Its name, runtime version and threads are recorded; a gate only divides by references that match.
"""

from __future__ import annotations

import abc
import math
import time
from typing import Any

import numpy as np

#: Name each workload. Change a name whenever its workload changes: gates compare equal names only.
TORCH_REFERENCE = "torch-bert-1layer-384h-fp32-bs4-seq64"
ORT_REFERENCE = "ort-ffn-2x384x1536-fp32-256rows"
OPENVINO_REFERENCE = "openvino-ffn-2x384x1536-fp32-256rows"

_BERT = dict(hidden_size=384, num_hidden_layers=1, num_attention_heads=12, intermediate_size=1536,
             vocab_size=1000, max_position_embeddings=128)
_BERT_SHAPE = (4, 64)
_FFN_ROWS, _FFN_HIDDEN, _FFN_INNER, _FFN_LAYERS = 256, 384, 1536, 2


class DriftReference(abc.ABC):
    """A fixed workload; :meth:`time_once` times one synchronized call of it.

    Each backend gets a reference in its own runtime: a torch call between ORT rounds (or the
    reverse) would leave the other runtime's threads spinning and slow the next round (measured:
    ORT bs1 rounds 68 % slower right after a torch call).
    """

    name: str

    def __init__(self, device: str):
        self.device = device
        for _ in range(3):  # warm: first calls allocate and pick kernels
            self.time_once()

    @abc.abstractmethod
    def _call(self) -> None:
        """One complete call of the workload (synchronized on the device)."""

    def time_once(self) -> float:
        started = time.perf_counter()
        self._call()
        return time.perf_counter() - started

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What a gate must find equal on both sides before it divides by this reference."""


class TorchReference(DriftReference):
    """A one-layer BERT with fixed random weights, built from a config (nothing downloaded)."""

    name = TORCH_REFERENCE

    def __init__(self, device: str):
        import torch
        from transformers import BertConfig, BertModel

        from quantbench.hardware import devices

        self._sync = lambda: devices.synchronize(device)
        with torch.random.fork_rng(devices=[]):  # fixed weights without touching the global RNG
            torch.manual_seed(0)
            self._model = BertModel(BertConfig(**_BERT)).eval().to(device)
            self._inputs = torch.randint(0, _BERT["vocab_size"], _BERT_SHAPE).to(device)
        super().__init__(device)

    def _call(self) -> None:
        import torch

        with torch.inference_mode():
            self._model(input_ids=self._inputs)
            self._sync()

    def describe(self) -> dict[str, Any]:
        import torch

        return {"name": self.name, "device": self.device, "torch": torch.__version__,
                "threads": torch.get_num_threads()}


def ffn_weights() -> list[dict[str, np.ndarray]]:
    """The feed-forward blocks' fixed seeded weights, per layer: w1, b1, w2, b2 (in the order drawn)."""
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(_FFN_LAYERS):
        layers.append({name: (rng.standard_normal(shape) * 0.05).astype(np.float32) for name, shape in (
            ("w1", (_FFN_HIDDEN, _FFN_INNER)), ("b1", (_FFN_INNER,)), ("w2", (_FFN_INNER, _FFN_HIDDEN)),
            ("b2", (_FFN_HIDDEN,)))})
    return layers


def ffn_graph():
    """Two transformer feed-forward blocks (MatMul, Add, Relu, MatMul, Add, residual, LayerNorm)
    with fixed seeded weights, as an ONNX model built in memory."""
    from onnx import TensorProto, helper, numpy_helper

    weights, nodes, x = [], [], "x"
    for i, layer in enumerate(ffn_weights()):
        for name, array in layer.items():
            weights.append(numpy_helper.from_array(array, f"{name}_{i}"))
        weights += [numpy_helper.from_array(np.ones(_FFN_HIDDEN, np.float32), f"g_{i}"),
                    numpy_helper.from_array(np.zeros(_FFN_HIDDEN, np.float32), f"beta_{i}")]
        nodes += [helper.make_node("MatMul", [x, f"w1_{i}"], [f"h_{i}"]),
                  helper.make_node("Add", [f"h_{i}", f"b1_{i}"], [f"hb_{i}"]),
                  helper.make_node("Relu", [f"hb_{i}"], [f"a_{i}"]),
                  helper.make_node("MatMul", [f"a_{i}", f"w2_{i}"], [f"o_{i}"]),
                  helper.make_node("Add", [f"o_{i}", f"b2_{i}"], [f"ob_{i}"]),
                  helper.make_node("Add", [f"ob_{i}", x], [f"r_{i}"]),
                  helper.make_node("LayerNormalization", [f"r_{i}", f"g_{i}", f"beta_{i}"], [f"y_{i}"], axis=-1)]
        x = f"y_{i}"
    graph = helper.make_graph(
        nodes, "quantbench_drift_reference",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [_FFN_ROWS, _FFN_HIDDEN])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [_FFN_ROWS, _FFN_HIDDEN])], initializer=weights)
    # IR version 8 (ONNX 1.10): any onnxruntime that runs opset 17 loads it.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


class OrtReference(DriftReference):
    """:func:`ffn_graph` in an ONNX Runtime session with the variants' own session settings."""

    name = ORT_REFERENCE

    def __init__(self, device: str, threads: int | None):
        import onnxruntime as ort

        from quantbench.backends.onnxruntime import session_options

        self.threads = threads
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(ffn_graph().SerializeToString(), sess_options=session_options(threads),
                                             providers=providers)
        self._feed = {"x": np.random.default_rng(1).standard_normal((_FFN_ROWS, _FFN_HIDDEN)).astype(np.float32)}
        super().__init__(device)

    def _call(self) -> None:
        self._session.run(None, self._feed)  # returns host arrays: the call is complete

    def describe(self) -> dict[str, Any]:
        import onnxruntime

        return {"name": self.name, "device": self.device, "onnxruntime": onnxruntime.__version__,
                "threads": self.threads or "ort-default"}


class OpenVINOReference(DriftReference):
    """:func:`ffn_weights`' blocks built as an OpenVINO model (MVN for the LayerNorm) and compiled
    by the CPU plugin with the variants' own settings: f32, the suite's threads. A torch call
    between OpenVINO rounds slows the next round (measured here: MiniLM bs1 8.5 -> 12.2 ms)."""

    name = OPENVINO_REFERENCE

    def __init__(self, device: str, threads: int | None):
        import openvino as ov
        from openvino import opset13 as ops

        from quantbench.backends.openvino import runtime_config

        self.threads = threads
        x = ops.parameter([_FFN_ROWS, _FFN_HIDDEN], np.float32, name="x")
        h = x
        for layer in ffn_weights():
            inner = ops.relu(ops.add(ops.matmul(h, ops.constant(layer["w1"]), False, False), ops.constant(layer["b1"])))
            out = ops.add(ops.add(ops.matmul(inner, ops.constant(layer["w2"]), False, False),
                                  ops.constant(layer["b2"])), h)
            # ONNX LayerNormalization with unit scale and zero bias (epsilon 1e-5): what the ORT graph runs
            h = ops.mvn(out, ops.constant(np.array([-1], dtype=np.int64)), True, 1e-5, "inside_sqrt")
        model = ov.Model([h], [x], "quantbench_drift_reference")
        self._compiled = ov.Core().compile_model(model, "CPU", runtime_config("fp32", {}, threads))
        self._request = self._compiled.create_infer_request()
        self._feed = {"x": np.random.default_rng(1).standard_normal((_FFN_ROWS, _FFN_HIDDEN)).astype(np.float32)}
        super().__init__(device)

    def _call(self) -> None:
        self._request.infer(self._feed, share_inputs=True)  # synchronous: the call is complete

    def describe(self) -> dict[str, Any]:
        import openvino

        return {"name": self.name, "device": self.device, "openvino": openvino.get_version(),
                "threads": self.threads or "openvino-default"}


def make_reference(backend: str, device: str, threads: int | None) -> DriftReference:
    """The reference for cells of ``backend`` on ``device``."""
    if backend == "onnxruntime":
        return OrtReference(device, threads)
    if backend == "openvino":
        return OpenVINOReference(device, threads)
    return TorchReference(device)


class RoundPairing:
    """pytest-benchmark ``setup`` hook: before each round, re-time the reference if ``every_s``
    has passed, and remember which reference time the round is paired with.

    The closer the pairing, the better it follows the machine (its speed regimes last seconds);
    ``every_s`` bounds the reference's cost on very short rounds.
    """

    def __init__(self, reference: DriftReference, every_s: float):
        self.reference = reference
        self.every_s = every_s
        self.per_round: list[float] = []
        self._latest = math.nan
        self._timed_at = -math.inf

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._timed_at >= self.every_s:
            self._latest = self.reference.time_once()
            self._timed_at = time.perf_counter()
        self.per_round.append(self._latest)
        return None  # pytest-benchmark: no arguments for the round
