"""Faults while LoadGen runs: a failing system fails the point with its reason, Ctrl-C stops the load,
and nothing is left running."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_point
from tests.unit.serving.synthetic import FixedServiceSystem

pytest.importorskip("mlperf_loadgen")


class BreaksAfter(FixedServiceSystem):
    """Serves ``good`` queries, then its model raises."""

    def __init__(self, good: int):
        super().__init__(0.002)
        self.good = good

    def serve(self, queries):
        if self.served >= self.good:
            raise RuntimeError("the model fell over")
        super().serve(queries)


def server_spec(rate=100.0, duration=3.0):
    return PointSpec("server", duration, duration + 5, 50, target_qps=rate, latency_ms=50.0, percentile=0.9)


def test_a_system_that_fails_mid_run_fails_the_point_with_its_reason(tmp_path):
    system = BreaksAfter(good=20)
    started = time.perf_counter()
    try:
        with pytest.raises(QuantbenchError, match="failed while serving: RuntimeError: the model fell over"):
            run_point(system, server_spec(), tmp_path, bounds_ms={"latency": 50.0})
    finally:
        system.close()
    assert time.perf_counter() - started < 15  # LoadGen drained: every open query was answered at once
    assert system.aborted


def test_ctrl_c_stops_the_load_and_raises(tmp_path):
    system = FixedServiceSystem(0.002)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_point(system, server_spec(duration=3.0), tmp_path, bounds_ms={"latency": 50.0})
        served_at_stop = system.served
        time.sleep(0.3)
        assert system.served == served_at_stop  # the system does no work once stopped
    finally:
        timer.cancel()
        system.close()
    # LoadGen has no abort: its schedule ran out (3 s) while every query was answered at once.
    assert system.aborted and time.perf_counter() - started < 3.0 + 3.0
    assert not any(t.name == "quantbench-loadgen" and t.is_alive() for t in threading.enumerate())


def test_a_stopped_system_serves_no_further_test(tmp_path):
    system = FixedServiceSystem(0.002)
    try:
        first = run_point(system, PointSpec("offline", 0.2, 5, 40, expected_qps=400), tmp_path / "a", bounds_ms={})
        assert first.client["completed"] == system.served > 0
        system.abort()
        with pytest.raises(QuantbenchError, match="was stopped; it serves no further test"):
            run_point(system, PointSpec("offline", 0.2, 5, 40, expected_qps=400), tmp_path / "b", bounds_ms={})
    finally:
        system.close()
