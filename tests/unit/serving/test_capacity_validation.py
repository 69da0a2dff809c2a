"""The capacity search against queueing theory, over many seeds: the search code as it runs in a
serving cell, on simulated queues whose capacity is known.

A real LoadGen run of the M/D/1 queue (test_md1.py) takes a minute per search; here the same
``find_capacity`` drives a simulated LoadGen Server point (synthetic.SimulatedQueue: Poisson
arrivals from the point's seed, LoadGen's query count and early-stopping verdict), so 40 seeds per
queue take seconds. What must hold, per queue:

* the median capacity over the seeds is within 5 % of the theory's;
* the reported 95 % interval covers the theory in at least 80 % of the seeds (a search that could
  not fit an interval counts as a miss).

The seeds are 10,000 and up: the fit's constants (knee spread, window) were chosen on seeds 0 to
199,000, so these are fresh.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.serving.search import find_capacity
from tests.unit.serving.synthetic import SimulatedQueue, md1_capacity, mm1_capacity

SEEDS = [10_000 + 100 * i for i in range(40)]
QUEUES = {
    # M/D/1, 5 ms service, p99 <= 25 ms: 112.2 QPS (the queue test_md1.py runs through real LoadGen).
    "M/D/1 p99": (SimulatedQueue(0.005, 25.0, 0.99), md1_capacity(0.005, 0.025, 0.99)),
    # M/M/1, 5 ms mean service, p99 <= 50 ms: 200 + ln(0.01) / 0.05 = 107.9 QPS. Exponential service
    # makes the tail burstier: the counts' dispersion, and so the interval, is larger.
    "M/M/1 p99": (SimulatedQueue(0.005, 50.0, 0.99, service="exponential"), mm1_capacity(0.005, 0.05, 0.99)),
    # M/D/1 at p90 <= 15 ms with 44 queries a point: the LLM suites' shape (p90, LoadGen's minimum).
    "M/D/1 p90, 44 queries": (SimulatedQueue(0.005, 15.0, 0.90, min_queries=44), md1_capacity(0.005, 0.015, 0.90)),
}


def searches(queue: SimulatedQueue):
    for seed in SEEDS:
        yield find_capacity(queue.measure, upper_qps=1 / queue.service_s, precision=0.05, max_points=8,
                            bounds_ms={"latency": queue.bound_s * 1000}, percentile=queue.percentile,
                            knee_points=4, seed=seed)


@pytest.mark.parametrize("name", list(QUEUES))
def test_the_capacity_s_median_and_interval_coverage_match_queueing_theory(name):
    queue, theory = QUEUES[name]
    results = list(searches(queue))
    estimates = np.array([r.capacity_qps for r in results], dtype=float)
    covered = [r.capacity_interval is not None and r.capacity_interval[0] <= theory <= r.capacity_interval[1]
               for r in results]
    median, coverage = float(np.median(estimates)), float(np.mean(covered))
    widths = [(r.capacity_interval[1] - r.capacity_interval[0]) / 2 / theory for r in results if r.capacity_interval]
    print(f"\n{name}: theory {theory:.1f} QPS; median {median:.1f} ({median / theory - 1:+.1%}), interval coverage "
          f"{coverage:.0%} over {len(SEEDS)} seeds, median half-width {np.median(widths):.0%}")
    assert all(r.slo_binding for r in results)  # every search found a rate that missed the SLO
    assert median == pytest.approx(theory, rel=0.05)
    assert coverage >= 0.80

