"""The capacity search against queueing theory: an M/D/1 queue under a p99 bound, through real LoadGen.

A fixed 5 ms service time and one server under Poisson arrivals is an M/D/1 queue; its p99 sojourn
time stays under 25 ms up to a rate Erlang's formula gives (about 112 QPS). Three searches with other
LoadGen seeds, each with its knee points and fit, must give a median within 15 % of it, and LoadGen's
completed QPS must agree with the system's own count at every point. The many-seed check (median
within 5 %, interval coverage) runs the same search on a simulated queue: test_capacity_validation.py.

The search's upper bound is the queue's service rate, 1 / 5 ms: what an ideal Offline run of this
system gives. LoadGen's Offline run of it is checked not to beat that, but it is not the bound
here: on a busy 2-core machine Python serves a saturated queue slower than 5 ms a query, while the
server points (well below saturation) are unaffected, since each answer's time comes from the
queue's own clock.

Why 5 ms and not 2 ms: LoadGen counts latency from a query's scheduled time, so a query issued or
answered a millisecond late (Python's GIL, another process on one of the 2 cores) counts against the
queue. At a 10 ms bound that millisecond was 10 % of it, and a CI run found 250 QPS against 280
with under 1 % of the answers late; at 25 ms it is 4 %. The theory check is skipped, with the
figures, only when the machine itself was measurably late: the consistency checks before it always run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantbench.serving.loadgen import PointSpec
from quantbench.serving.point import run_point
from quantbench.serving.search import find_capacity
from tests.unit.serving.synthetic import FixedServiceSystem, md1_capacity, md1_simulated_capacity

pytest.importorskip("mlperf_loadgen")

SERVICE_S, BOUND_MS, P99 = 0.005, 25.0, 0.99
# A late answer or a late issue matters to the p99 verdict from a tenth of the bound on.
LATE_S = BOUND_MS / 1000 / 10
LATE_SHARE = 0.005  # half the 1 % of queries p99 lets over the bound


def test_the_formula_and_a_simulated_queue_agree():
    exact = md1_capacity(SERVICE_S, BOUND_MS / 1000, P99)
    assert 105 < exact < 120  # rho about 0.56: the knee of an M/D/1 queue at 5 service times
    assert md1_simulated_capacity(SERVICE_S, BOUND_MS / 1000, P99) == pytest.approx(exact, rel=0.05)


def machine_lateness(system: FixedServiceSystem, points) -> str | None:
    """Why the machine, not the queue, may have decided a verdict; None when it served on time.

    Two ways: answers that came more than LATE_S after their time in the queue (the serving thread
    got a core late), and LoadGen's p99 above the system's own (LoadGen's clock starts at the
    scheduled time, the system's when the query reached it: a gap is a late issue).
    """
    late = system.late_share(LATE_S)
    gaps = [p.latency_ms["p99"] - p.client["latency_ms"]["p99"] for p in points]
    if late > LATE_SHARE:
        return f"{late:.2%} of the answers came more than {LATE_S * 1000:g} ms after their time in the queue"
    if max(gaps) > LATE_S * 1000:
        return (f"LoadGen's p99 was up to {max(gaps):.1f} ms above the system's own: queries reached the system "
                "late")
    return None


#: Three searches with other seeds: each point of each has its own LoadGen seeds.
REAL_SEEDS = (0, 1000, 2000)


def real_search(tmp_path: Path, seed: int):
    system = FixedServiceSystem(SERVICE_S)
    bounds = {"latency": BOUND_MS}
    try:
        offline = run_point(system, PointSpec("offline", 1.0, 10.0, 600, expected_qps=0.8 / SERVICE_S),
                            tmp_path / f"off-{seed}", bounds_ms={})
        system.late_s.clear()  # lateness is judged on the Server points
        points = []

        def measure(rate, point_seed):
            spec = PointSpec("server", 1.0, 20.0, 600, target_qps=rate, latency_ms=BOUND_MS, percentile=P99,
                             seed=point_seed)
            point = run_point(system, spec, tmp_path / f"server-{seed}-{len(points)}", bounds_ms=bounds)
            points.append(point)
            return point

        result = find_capacity(measure, upper_qps=1 / SERVICE_S, precision=0.05, max_points=8,
                               bounds_ms=bounds, percentile=P99, knee_points=4, seed=seed)
    finally:
        system.close()
    return system, offline, points, result


@pytest.mark.slow
def test_the_search_through_loadgen_finds_the_md1_capacity(tmp_path):
    expected = md1_capacity(SERVICE_S, BOUND_MS / 1000, P99)
    estimates, late = [], []
    for seed in REAL_SEEDS:
        system, offline, points, result = real_search(tmp_path, seed)
        # What holds on any machine: LoadGen's counts against the system's own, and the verdicts.
        assert 0 < offline.completed_qps <= 1.02 / SERVICE_S  # no system beats its own service rate
        for point in [offline, *points]:
            assert point.client["completed"] == point.query_count or point.scenario == "offline"
            assert point.completed_qps == pytest.approx(point.client["completed_qps"], rel=0.03)
            assert (Path(point.log_dir) / "mlperf_log_summary.txt").is_file()
            assert (Path(point.log_dir) / "mlperf_log_detail.txt").is_file()
            # LoadGen's clock starts before the system's: its p99 is never below the system's.
            if point.scenario == "server":
                assert point.latency_ms["p99"] >= point.client["latency_ms"]["p99"] - 0.05
        # LoadGen's VALID (early stopping) is stricter than the share over the bound: never VALID and missed.
        assert not any(p.valid and not p.met for p in points)
        assert len({p.seed for p in points}) == len(points)  # every point its own seeds
        assert result.slo_binding and result.capacity_interval is not None, result.method()
        estimates.append(result.capacity_qps)
        why = machine_lateness(system, points)
        if why:
            late.append(why)
        low, high = result.capacity_interval
        print(f"\nseed {seed}: M/D/1 capacity {expected:.1f} QPS; found {result.capacity_qps:.1f} "
              f"[{low:.1f}, {high:.1f}] ({result.capacity_qps / expected - 1:+.1%}) in {len(points)} points; "
              f"{system.late_share(LATE_S):.2%} of the answers more than {LATE_S * 1000:g} ms late")
    median = float(np.median(estimates))
    # The simulated searches (test_capacity_validation.py) put one search's estimate within about 10 % of
    # the theory (1 sd); the median of three within 15 % is then a 3-sd check. The queue is M/D/1 only if
    # the machine issues and answers on time: when it did not, this says so and stops (the checks above ran).
    if median != pytest.approx(expected, rel=0.15) and late:
        pytest.skip(f"the machine was too busy for a queueing-theory check ({late[0]}); median {median:.1f} QPS "
                    f"against {expected:.1f}: {[round(e, 1) for e in estimates]}")
    assert median == pytest.approx(expected, rel=0.15), estimates
