"""OpenVINO's drift reference: the seeded feed-forward blocks built as an OpenVINO model and compiled
by the CPU plugin with the variants' own settings, timed between rounds."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.measures.drift import FFN_HIDDEN, FFN_ROWS, DriftReference, ffn_weights

#: Change the name whenever the workload changes: gates compare equal names only.
OPENVINO_REFERENCE = "openvino-ffn-2x384x1536-fp32-256rows"


class OpenVINOReference(DriftReference):
    """:func:`ffn_weights`' blocks built as an OpenVINO model (MVN for the LayerNorm) and compiled
    by the CPU plugin with the variants' own settings: f32, the suite's threads. A torch call
    between OpenVINO rounds slows the next round (measured here: MiniLM bs1 8.5 -> 12.2 ms)."""

    name = OPENVINO_REFERENCE

    def __init__(self, device: str, threads: int | None):
        import openvino as ov
        from openvino import opset13 as ops

        from quantbench.backends.openvino.build import runtime_config

        self.threads = threads
        x = ops.parameter([FFN_ROWS, FFN_HIDDEN], np.float32, name="x")
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
        self._feed = {"x": np.random.default_rng(1).standard_normal((FFN_ROWS, FFN_HIDDEN)).astype(np.float32)}
        super().__init__(device)

    def _call(self) -> None:
        self._request.infer(self._feed, share_inputs=True)  # synchronous: the call is complete

    def describe(self) -> dict[str, Any]:
        import openvino

        return {"name": self.name, "device": self.device, "openvino": openvino.get_version(),
                "threads": self.threads or "openvino-default"}


def reference(device: str, threads: int | None) -> DriftReference:
    return OpenVINOReference(device, threads)
