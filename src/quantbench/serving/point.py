"""One point end to end: run LoadGen on a system, read its logs back, add the system's own figures.
An AccuracyOnly run has no performance result: :func:`run_accuracy` returns its responses instead."""

from __future__ import annotations

from pathlib import Path

from quantbench.serving.loadgen import PointSpec, run_test
from quantbench.serving.logs import PointResult, read_accuracy, read_point
from quantbench.serving.timing import client_figures


def run_point(system, spec: PointSpec, log_dir: Path, *, bounds_ms: dict[str, float],
              relative_to: Path | None = None) -> PointResult:
    """Run ``spec`` on ``system`` with its logs in ``log_dir``; goodput counts queries meeting ``bounds_ms``."""
    wall = run_test(system, spec, log_dir)
    _drop_empty_logs(log_dir, spec)
    client = client_figures(list(system.finished), bounds_ms)
    return read_point(log_dir, scenario=spec.scenario, target_qps=spec.target_qps, wall_s=wall, client=client,
                      relative_to=relative_to)


def run_accuracy(system, spec: PointSpec, log_dir: Path) -> dict[int, bytes]:
    """Run ``spec`` (AccuracyOnly) on ``system``: every response, by sample index."""
    if not spec.accuracy:
        raise ValueError("run_accuracy runs AccuracyOnly points")
    run_test(system, spec, log_dir)
    _drop_empty_logs(log_dir, spec)
    return read_accuracy(log_dir)


def _drop_empty_logs(log_dir: Path, spec: PointSpec) -> None:
    """The trace (off) and, in performance mode, the accuracy log hold nothing: the folder keeps what does."""
    from quantbench.serving.logs import ACCURACY

    for name in ("mlperf_log_trace.json", *(() if spec.accuracy else (ACCURACY,))):
        path = log_dir / name
        if path.is_file() and path.stat().st_size <= 4:  # empty, or "[]"
            path.unlink()
