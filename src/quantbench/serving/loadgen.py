"""One MLPerf LoadGen test (a *point*): its settings, the SUT and QSL handles, a run into a log folder.

``mlperf_loadgen.StartTestWithLogSettings`` blocks until the test ends and calls the system under
test from LoadGen's own threads. It runs here in a worker thread while this thread waits in short
steps, so Ctrl-C (or a system that died) reaches Python at once: the SUT is aborted (it stops
working, stops its server, and answers every query at once from then on). LoadGen has no abort: its
schedule runs to its end, bounded by the point's maximum duration, with nothing left to serve; then
the error is raised and nothing is left running.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantbench.errors import MissingDependencyError, QuantbenchError

SCENARIOS = {"single_stream": "SingleStream", "offline": "Offline", "server": "Server"}
#: Seconds LoadGen may take past a point's maximum duration to drain after an abort.
ABORT_GRACE_S = 10.0
INSTALL_HINT = "pip install 'quantbench[serving]' (mlcommons-loadgen==6.0.17)"


def loadgen():
    """The ``mlperf_loadgen`` module, or a one-line error saying how to install it."""
    try:
        import mlperf_loadgen
    except ImportError:
        raise MissingDependencyError(f"serving cells need MLPerf LoadGen: {INSTALL_HINT}") from None
    return mlperf_loadgen


def missing_loadgen() -> str | None:
    """Why serving cells cannot run here (LoadGen is not installed), else None."""
    import importlib.util

    return None if importlib.util.find_spec("mlperf_loadgen") else f"serving needs MLPerf LoadGen: {INSTALL_HINT}"


@dataclass(frozen=True)
class PointSpec:
    """What one LoadGen test runs: the scenario, its rate or bounds, and how long."""

    scenario: str  # single_stream, offline or server
    min_duration_s: float
    max_duration_s: float
    min_queries: int
    target_qps: float | None = None  # server: the Poisson arrival rate
    expected_qps: float | None = None  # offline: LoadGen sizes its one query from it
    expected_latency_ms: float | None = None  # single_stream: LoadGen's schedule hint
    latency_ms: float | None = None  # server: the latency bound (classification)
    ttft_ms: float | None = None  # server: token-latency bounds (generation)
    tpot_ms: float | None = None
    percentile: float = 0.99
    token_latencies: bool = False  # generation: the SUT reports first tokens and token counts
    accuracy: bool = False  # AccuracyOnly: every sample once, responses logged
    accuracy_samples: int | None = None  # AccuracyOnly: only this many samples
    seed: int | None = None  # LoadGen's schedule, sample-index and QSL seeds; None: LoadGen's fixed defaults

    def __post_init__(self):
        if self.scenario not in SCENARIOS:
            raise QuantbenchError(f"unknown serving scenario {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        if self.scenario == "server" and not (self.target_qps and self.target_qps > 0):
            raise QuantbenchError(f"a server point needs a positive target QPS, got {self.target_qps!r}")

    def test_settings(self, lg) -> Any:
        settings = lg.TestSettings()
        settings.scenario = getattr(lg.TestScenario, SCENARIOS[self.scenario])
        settings.mode = lg.TestMode.AccuracyOnly if self.accuracy else lg.TestMode.PerformanceOnly
        settings.min_duration_ms = int(self.min_duration_s * 1000)
        settings.max_duration_ms = int(self.max_duration_s * 1000)
        settings.min_query_count = int(self.min_queries)
        if self.seed is not None:
            # A point's arrivals and samples differ from every other point's: LoadGen's defaults replay one
            # schedule at every rate and in every run.
            seeds = self.loadgen_seeds()
            settings.schedule_rng_seed = seeds["schedule_rng_seed"]
            settings.sample_index_rng_seed = seeds["sample_index_rng_seed"]
            settings.qsl_rng_seed = seeds["qsl_rng_seed"]
        if self.accuracy and self.accuracy_samples:
            settings.accuracy_sample_count_override = int(self.accuracy_samples)
        if self.scenario == "server":
            settings.server_target_qps = float(self.target_qps)
            settings.server_target_latency_percentile = float(self.percentile)
            if self.latency_ms is not None:
                settings.server_target_latency_ns = int(self.latency_ms * 1e6)
        if self.scenario == "offline" and self.expected_qps:
            settings.offline_expected_qps = float(self.expected_qps)
        if self.scenario == "single_stream" and self.expected_latency_ms:
            settings.single_stream_expected_latency_ns = int(self.expected_latency_ms * 1e6)
        if self.token_latencies:
            settings.use_token_latencies = True
            if self.ttft_ms is not None:
                settings.ttft_latency = int(self.ttft_ms * 1e6)
            if self.tpot_ms is not None:
                settings.tpot_latency = int(self.tpot_ms * 1e6)
        return settings

    def loadgen_seeds(self) -> dict[str, int]:
        """LoadGen's three seeds drawn from ``seed`` (numpy's SeedSequence): independent streams, so the
        arrival gaps and the sample choices are not one generator's draws replayed."""
        import numpy as np

        state = np.random.SeedSequence(int(self.seed)).generate_state(3, dtype=np.uint32)
        return dict(zip(("schedule_rng_seed", "sample_index_rng_seed", "qsl_rng_seed"), map(int, state)))

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


def run_test(sut, spec: PointSpec, log_dir: Path) -> float:
    """Run one LoadGen test of ``sut`` into ``log_dir``; returns its wall seconds.

    ``sut`` provides LoadGen's callbacks (``issue_queries``, ``flush_queries``, ``load_samples``,
    ``unload_samples``), ``sample_count``, ``begin(spec)``, ``check()`` (raises once the system has
    failed) and ``abort()``.
    """
    lg = loadgen()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_settings = lg.LogSettings()
    log_settings.log_output.outdir = str(log_dir)
    log_settings.log_output.copy_summary_to_stdout = False
    log_settings.enable_trace = False
    settings = spec.test_settings(lg)
    sut.begin(spec)
    sut_handle = lg.ConstructSUT(sut.issue_queries, sut.flush_queries)
    qsl_handle = lg.ConstructQSL(sut.sample_count, sut.sample_count, sut.load_samples, sut.unload_samples)
    failure: list[BaseException] = []
    # The end of the test is an Event, not Thread.join/is_alive: a join interrupted by Ctrl-C can leave
    # is_alive() False while the thread still runs (CPython), and freeing LoadGen's handles then crashes.
    finished = threading.Event()

    def target() -> None:
        try:
            lg.StartTestWithLogSettings(sut_handle, qsl_handle, settings, log_settings)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="quantbench-loadgen", daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        while not finished.wait(0.1):
            sut.check()
        sut.check()
    except BaseException as exc:
        sut.abort()
        if isinstance(exc, KeyboardInterrupt):
            import sys

            print(f"\nquantbench: stopping: the system answers every query at once now; LoadGen ends its schedule "
                  f"within {spec.max_duration_s:g} s", file=sys.stderr, flush=True)
        if finished.wait(spec.max_duration_s + ABORT_GRACE_S):  # never free handles LoadGen may still call
            lg.DestroyQSL(qsl_handle)
            lg.DestroySUT(sut_handle)
        raise
    lg.DestroyQSL(qsl_handle)
    lg.DestroySUT(sut_handle)
    if failure:
        raise QuantbenchError(f"LoadGen failed: {type(failure[0]).__name__}: {failure[0]}")
    return time.perf_counter() - started
