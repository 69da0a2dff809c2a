"""ONNX Runtime's GEMMs, as its cells run them, for the machine's limits (efficiency/limits.py).

The ``dynamic_int8`` (QOperator) and ``static_int8`` (QDQ) variants both end in MLAS's quantized
GEMM: ``MatMulInteger`` (uint8 activations x int8 weights -> int32) is that kernel with nothing
around it. It has AVX2 (vpmaddubsw) and VNNI paths, so it is native on every x86-64 this project runs.
"""

from __future__ import annotations

from quantbench.backends.onnxruntime.build import session_options
from quantbench.backends.runtime import Probe


def _session(op: str, a_type, b_type, c_type, n: int, threads: int | None):
    import onnxruntime as ort
    from onnx import helper

    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["c"])], f"{op}-peak",
        [helper.make_tensor_value_info("a", a_type, [n, n]), helper.make_tensor_value_info("b", b_type, [n, n])],
        [helper.make_tensor_value_info("c", c_type, [n, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what every onnxruntime of this range reads
    return ort.InferenceSession(model.SerializeToString(), sess_options=session_options(threads),
                                providers=["CPUExecutionProvider"])


def matmul_integer(n: int, *, device: str, threads: int | None) -> Probe | None:
    if device != "cpu":
        return None
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto

    session = _session("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32, n, threads)
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    return Probe(call=lambda: session.run(None, feed), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"onnxruntime {ort.__version__} MatMulInteger (uint8 x int8 -> int32, MLAS)",
                 keep=(session, feed))


def matmul_float(n: int, *, device: str, threads: int | None) -> Probe | None:
    """ONNX Runtime's float32 MatMul (MLAS SGEMM): what the fp32 cells' matmuls run."""
    if device != "cpu":
        return None
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto

    session = _session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT, n, threads)
    rng = np.random.default_rng(0)
    feed = {"a": rng.standard_normal((n, n)).astype(np.float32), "b": rng.standard_normal((n, n)).astype(np.float32)}
    return Probe(call=lambda: session.run(None, feed), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"onnxruntime {ort.__version__} MatMul float32 (MLAS)", keep=(session, feed))
