"""The drift reference workload and its pairing with a cell's rounds."""

from __future__ import annotations

import pytest

from quantbench.errors import QuantbenchError
from quantbench.measures.drift import REFERENCE_NAME, DriftReference, RoundPairing
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
    first, second = DriftReference("cpu"), DriftReference("cpu")
    assert torch.equal(torch.rand(3), expected)  # building it drew nothing from the global RNG
    for a, b in zip(first._model.parameters(), second._model.parameters()):
        assert torch.equal(a, b)  # same weights in every run: the same workload
    assert 0 < first.time_once() < 5
    info = first.describe()
    assert info["name"] == REFERENCE_NAME and info["device"] == "cpu" and info["threads"] >= 1


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
