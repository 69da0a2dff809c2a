"""torchao: int8 weight-only and int8 dynamic-activation methods for PyTorch models.

An extension of the pytorch runtime: its variants are PyTorch variants (backend ``pytorch`` in
cells and records), built by torchao's ``quantize_`` (build.py).
"""

from __future__ import annotations

from quantbench.backends.options import LinearOptions
from quantbench.backends.runtime import Method, Runtime
from quantbench.backends.torchao import quiet

quiet.install()  # torchao's import-time lines on a CPU torch (quiet.py says which, and why)

_BUILD = "quantbench.backends.torchao.build"

RUNTIME = Runtime(
    name="torchao",
    description="torchao quantize_ on PyTorch models: int8 weight-only, int8 dynamic activations",
    extends="pytorch",
    requires=("torchao",),
    extra="torchao",
    libraries=("torchao",),
    methods=(
        Method("int8wo", f"{_BUILD}:build_int8_weight_only", ("cpu", "cuda"),
               "torchao Int8WeightOnlyConfig: int8 weights, float activations", options=LinearOptions),
        Method("int8dq", f"{_BUILD}:build_int8_dynamic", ("cpu", "cuda"),
               "torchao Int8DynamicActivationInt8WeightConfig: int8 weights and per-token dynamic int8 activations",
               options=LinearOptions, compute="int8_torch"),
    ),
)
