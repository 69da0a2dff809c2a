"""OpenVINO's matmuls, as its cells run them, for the machine's limits: the int8 one of ``static_int8``
(below), and the float one at f32 and bf16 that fp32, bf16 and the weight-only methods decompress into.

NNCF's static int8 IR puts a FakeQuantize on each matmul's activations and stores the weights as
int8 constants with a Convert and a scale; the CPU plugin's low-precision transformations turn that
pattern into an int8 matmul (oneDNN: VNNI where the CPU has it, vpmaddubsw on AVX2). The probe
builds the same pattern around one n x n matmul, compiles it with the variants' own settings (f32
inference precision, the suite's threads) and checks from the compiled model that the matmul runs
in int8: a probe that ran in float would be a wrong peak, so it is refused.
"""

from __future__ import annotations

from quantbench.backends.runtime import Probe
from quantbench.errors import QuantbenchError


def int8_matmul(n: int, *, device: str, threads: int | None) -> Probe | None:
    if device != "cpu":
        return None
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    from quantbench.backends.openvino.build import runtime_census, runtime_config

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32, name="x")
    limit = np.float32(4.0)
    fq = ops.fake_quantize(x, ops.constant(np.float32(0)), ops.constant(limit), ops.constant(np.float32(0)),
                           ops.constant(limit), 256)
    weights = rng.integers(-127, 127, (n, n), dtype=np.int8)
    scale = ops.constant(np.full((n, 1), 0.01, dtype=np.float32))
    w = ops.multiply(ops.convert(ops.constant(weights), "f32"), scale)
    model = ov.Model([ops.matmul(fq, w, False, True)], [x], "quantbench_int8_peak")
    compiled = ov.Core().compile_model(model, "CPU", runtime_config("static_int8", {}, threads))
    precisions = {p for layer in ("FullyConnected", "MatMul")
                  for p in runtime_census(compiled)["layers"].get(layer, {})}
    if not precisions & {"i8", "u8"}:
        raise QuantbenchError(f"OpenVINO compiled the int8 probe's matmul in {sorted(precisions) or 'no'} "
                              "precision, not int8: no int8 peak can be measured with it")
    request = compiled.create_infer_request()
    feed = {"x": rng.uniform(0, 4, (n, n)).astype(np.float32)}
    return Probe(call=lambda: request.infer(feed, share_inputs=True), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"OpenVINO {ov.get_version()} CPU int8 matmul (FakeQuantize u8 x int8 weights, "
                        f"runs as {'/'.join(sorted(precisions))})", keep=(compiled, request, feed))


def _float_matmul(n: int, threads: int | None, precision: str) -> Probe:
    """One n x n float matmul compiled by the CPU plugin at ``precision`` (its inference precision hint),
    refused unless the compiled model runs it at that precision."""
    import numpy as np
    import openvino as ov
    from openvino import opset13 as ops

    from quantbench.backends.openvino.build import runtime_census, runtime_config

    rng = np.random.default_rng(0)
    x = ops.parameter([n, n], np.float32, name="x")
    w = ops.constant(rng.standard_normal((n, n)).astype(np.float32))
    model = ov.Model([ops.matmul(x, w, False, True)], [x], f"quantbench_{precision}_peak")
    options = {} if precision == "f32" else {"inference_precision": precision}
    compiled = ov.Core().compile_model(model, "CPU", runtime_config("int8wo", options, threads))
    precisions = {p for layer in ("FullyConnected", "MatMul") for p in runtime_census(compiled)["layers"].get(layer, {})}
    if precision not in precisions:
        raise QuantbenchError(f"OpenVINO compiled the {precision} probe's matmul in {sorted(precisions) or 'no'} "
                              f"precision, not {precision}: no {precision} peak can be measured with it")
    request = compiled.create_infer_request()
    feed = {"x": rng.standard_normal((n, n)).astype(np.float32)}
    return Probe(call=lambda: request.infer(feed, share_inputs=True), ops=2.0 * n ** 3, shape=f"{n}x{n}x{n}",
                 method=f"OpenVINO {ov.get_version()} CPU matmul, inference precision {precision} (oneDNN)",
                 keep=(compiled, request, feed))


def f32_matmul(n: int, *, device: str, threads: int | None) -> Probe | None:
    return _float_matmul(n, threads, "f32") if device == "cpu" else None


def bf16_matmul(n: int, *, device: str, threads: int | None) -> Probe | None:
    return _float_matmul(n, threads, "bf16") if device == "cpu" else None
