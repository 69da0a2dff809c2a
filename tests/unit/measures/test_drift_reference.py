"""The drift reference workload and its pairing with a cell's rounds."""

from __future__ import annotations

import pytest

from quantbench.errors import QuantbenchError
from quantbench.backends.onnxruntime.drift import ORT_REFERENCE, ffn_graph
from quantbench.backends.pytorch.drift import TORCH_REFERENCE
from quantbench.measures.drift import RoundPairing, make_reference
from quantbench.suite import parse_suite


class CountingReference:
    def __init__(self):
        self.calls = 0

    def time_once(self) -> float:
        self.calls += 1
        return 0.001 * self.calls


def test_pairing_retimes_only_when_the_interval_has_passed():
    every_round = RoundPairing(CountingReference(), every_s=0.0)
    for _ in range(5):
        every_round()
    assert every_round.per_round == pytest.approx([0.001, 0.002, 0.003, 0.004, 0.005])
    once = RoundPairing(CountingReference(), every_s=3600.0)
    for _ in range(5):
        assert once() is None  # pytest-benchmark's setup: None means "no arguments"
    assert once.per_round == [0.001] * 5 and once.reference.calls == 1


def test_reference_is_fixed_and_leaves_the_global_rng_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first, second = make_reference("pytorch", "cpu", None), make_reference("pytorch", "cpu", None)
    assert torch.equal(torch.rand(3), expected)  # building it drew nothing from the global RNG
    for a, b in zip(first._model.parameters(), second._model.parameters()):
        assert torch.equal(a, b)  # same weights in every run: the same workload
    assert 0 < first.time_once() < 5
    info = first.describe()
    assert info["name"] == TORCH_REFERENCE and info["device"] == "cpu" and info["threads"] >= 1
    assert info["torch"] == torch.__version__


def test_ort_cells_get_a_fixed_reference_in_onnxruntime():
    """ORT rounds pair with an ORT workload (a torch call between them would leave threads spinning)."""
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    import onnx
    import onnxruntime

    graph = ffn_graph()
    onnx.checker.check_model(graph)
    assert graph.SerializeToString() == ffn_graph().SerializeToString()  # seeded: the same bytes every run
    assert [n.op_type for n in graph.graph.node].count("MatMul") == 4
    reference = make_reference("onnxruntime", "cpu", 1)
    options = reference._session.get_session_options()
    assert options.intra_op_num_threads == 1  # the suite's threads, as the variants use
    assert options.get_session_config_entry("session.force_spinning_stop") == "1"
    assert 0 < reference.time_once() < 5
    assert reference.describe() == {"name": ORT_REFERENCE, "device": "cpu",
                                    "onnxruntime": onnxruntime.__version__, "threads": 1}


def suite(**measure):
    return parse_suite({"models": [{"name": "m"}], "measure": measure}, where="s.yaml")


def test_suite_reads_and_checks_the_reference_settings():
    off = suite(drift_reference=False, reference_every_s=1)
    assert off.measure.drift_reference is False and off.measure.reference_every_s == 1.0
    assert suite().measure.drift_reference is True
    with pytest.raises(QuantbenchError, match=r"s.yaml: measure.reference_every_s: must be a positive number of seconds, got 0"):
        suite(reference_every_s=0)
    with pytest.raises(QuantbenchError, match=r"measure.drift_reference: expected bool, got 'yes'"):
        suite(drift_reference="yes")


def test_openvino_cells_get_the_same_workload_compiled_by_openvino():
    """OpenVINO rounds pair with an OpenVINO workload: the ORT reference's blocks, f32, the suite's threads."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    import numpy as np

    from quantbench.backends.openvino.drift import OPENVINO_REFERENCE

    reference = make_reference("openvino", "cpu", 1)
    assert reference._compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert reference._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    info = reference.describe()
    assert info["name"] == OPENVINO_REFERENCE and info["threads"] == 1 and info["openvino"]
    assert 0 < reference.time_once() < 5
    ours = reference._request.infer(reference._feed)[0]
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    # the same function as the ORT reference: same weights, same ops
    theirs = make_reference("onnxruntime", "cpu", 1)._session.run(None, reference._feed)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
