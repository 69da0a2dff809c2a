"""ONNX Runtime's drift reference: two seeded feed-forward blocks in an ONNX Runtime session with
the variants' own session settings, timed between rounds (a torch call between ORT rounds would
leave the other runtime's threads spinning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.measures.drift import FFN_HIDDEN, FFN_ROWS, DriftReference, ffn_weights

#: Change the name whenever the workload changes: gates compare equal names only.
ORT_REFERENCE = "ort-ffn-2x384x1536-fp32-256rows"


def ffn_graph():
    """Two transformer feed-forward blocks (MatMul, Add, Relu, MatMul, Add, residual, LayerNorm)
    with fixed seeded weights, as an ONNX model built in memory."""
    from onnx import TensorProto, helper, numpy_helper

    weights, nodes, x = [], [], "x"
    for i, layer in enumerate(ffn_weights()):
        for name, array in layer.items():
            weights.append(numpy_helper.from_array(array, f"{name}_{i}"))
        weights += [numpy_helper.from_array(np.ones(FFN_HIDDEN, np.float32), f"g_{i}"),
                    numpy_helper.from_array(np.zeros(FFN_HIDDEN, np.float32), f"beta_{i}")]
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
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [FFN_ROWS, FFN_HIDDEN])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [FFN_ROWS, FFN_HIDDEN])], initializer=weights)
    # IR version 8 (ONNX 1.10): any onnxruntime that runs opset 17 loads it.
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


class OrtReference(DriftReference):
    """:func:`ffn_graph` in an ONNX Runtime session with the variants' own session settings."""

    name = ORT_REFERENCE

    def __init__(self, device: str, threads: int | None):
        import onnxruntime as ort

        from quantbench.backends.onnxruntime.build import session_options

        self.threads = threads
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(ffn_graph().SerializeToString(), sess_options=session_options(threads),
                                             providers=providers)
        self._feed = {"x": np.random.default_rng(1).standard_normal((FFN_ROWS, FFN_HIDDEN)).astype(np.float32)}
        super().__init__(device)

    def _call(self) -> None:
        self._session.run(None, self._feed)  # returns host arrays: the call is complete

    def describe(self) -> dict[str, Any]:
        import onnxruntime

        return {"name": self.name, "device": self.device, "onnxruntime": onnxruntime.__version__,
                "threads": self.threads or "ort-default"}


def reference(device: str, threads: int | None) -> DriftReference:
    return OrtReference(device, threads)
