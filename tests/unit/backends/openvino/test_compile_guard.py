"""The bf16 compile guard: a child that dies is a reason, never the harness's own death.

The child's code is replaced by one that kills itself, fails, or succeeds, so this holds on any machine;
test_build.py meets the real crash where the CPU has it (an Intel Xeon VM: SIGFPE in the AMX kernels).
"""

from __future__ import annotations

import pytest

pytest.importorskip("optimum.intel.openvino", reason="the openvino extra is not installed (it goes with the "
                                                     "transformers 4.57 line: pip install 'quantbench[openvino]')")

from quantbench.backends.openvino import build as ov_build  # noqa: E402
from quantbench.backends.openvino import compile_guard  # noqa: E402
from quantbench.errors import QuantbenchError  # noqa: E402


@pytest.fixture
def ir(tmp_path, monkeypatch):
    (tmp_path / "openvino_model.xml").write_text("<net/>")
    monkeypatch.setattr(compile_guard, "_child_compile", compile_guard._child_compile.__wrapped__)
    return tmp_path


@pytest.mark.parametrize("child, reason", [
    ("import os, signal; os.kill(os.getpid(), signal.SIGFPE)", "a child process compiling it died with SIGFPE"),
    ("raise RuntimeError('Exception from src/plugins/intel_cpu: no bf16 here')",
     "a child process compiling it failed: RuntimeError: Exception from src/plugins/intel_cpu: no bf16 here"),
    ("import sys; sys.exit(0)", None),
])
def test_the_child_s_end_is_the_reason(ir, monkeypatch, child, reason):
    monkeypatch.setattr(compile_guard, "_CHILD", child)
    assert compile_guard.crash_reason(ir, {"INFERENCE_PRECISION_HINT": "bf16"}) == reason


def test_the_child_compiles_the_ir_it_is_given_with_the_config(ir, monkeypatch):
    seen = ir / "seen.txt"
    monkeypatch.setattr(compile_guard, "_CHILD", f"import sys; open({str(seen)!r}, 'w').write(sys.argv[1] + '|' + sys.argv[2])")
    assert compile_guard.crash_reason(ir, {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": "1"}) is None
    xml, config = seen.read_text().split("|")
    assert xml == str(ir / "openvino_model.xml") and config == '{"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": "1"}'


def test_a_bf16_variant_whose_compile_kills_the_child_fails_with_that_reason(tiny_llama, monkeypatch):
    from tests.unit.backends.openvino.test_build import settings
    from quantbench.backends.base import ModelSource

    monkeypatch.setattr(ov_build.compile_guard, "crash_reason", lambda folder, config: "a child process compiling it "
                        "died with SIGFPE" if config["INFERENCE_PRECISION_HINT"] == "bf16" else None)
    source = ModelSource("tinylm", tiny_llama, fingerprint="tiny-llama-ov-guard")
    with pytest.raises(QuantbenchError, match=r"^bf16: OpenVINO's CPU plugin cannot compile this model in bf16 on this "
                                              r"CPU \(a child process compiling it died with SIGFPE\); the cell is not run"):
        ov_build._build("bf16", source, settings("text-generation"))
    # f32 is not guarded: it compiles in the harness's process as before.
    assert ov_build._build("fp32", source, settings("text-generation")).quant == "fp32"
