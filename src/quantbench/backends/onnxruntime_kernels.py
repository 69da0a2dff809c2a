"""ONNX Runtime's int8 GEMM, as its int8 cells run it, for the machine's limits (efficiency/limits.py).

The ``dynamic_int8`` (QOperator) and ``static_int8`` (QDQ) variants both end in MLAS's quantized
GEMM: ``MatMulInteger`` (uint8 activations x int8 weights -> int32) is that kernel with nothing
around it. It has AVX2 (vpmaddubsw) and VNNI paths, so it is native on every x86-64 this project runs.
"""

from __future__ import annotations

from quantbench.efficiency.kernels import Probe


def matmul_integer(n: int, *, device: str, threads: int | None) -> Probe | None:
    if device != "cpu":
        return None
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from quantbench.backends.onnxruntime import session_options

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "int8-peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what every onnxruntime of this range reads
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(threads),
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    return Probe(call=lambda: session.run(None, feed), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"onnxruntime {ort.__version__} MatMulInteger (uint8 x int8 -> int32, MLAS)",
                 keep=(session, feed))
