"""Synthetic systems under test for the serving tests: no model, known behaviour."""

from __future__ import annotations

import math
import time

import numpy as np

from quantbench.serving.inprocess import BatchedSystem
from quantbench.serving.logs import PointResult


class FixedServiceSystem(BatchedSystem):
    """One server, FIFO, a fixed service time: an M/D/1 queue under LoadGen's Poisson arrivals.

    Each query is answered at ``max(its arrival, the previous answer) + service_s``, by a clock kept
    apart from when the thread wakes: a late wake-up (Python, a busy machine) delays one answer a
    little but never the ones after it, so the queue is the M/D/1 queue and not Python's overhead.
    """

    kind = "synthetic fixed-service system"

    def __init__(self, service_s: float, samples: int = 64):
        super().__init__(samples, max_batch=1, max_queue_delay_s=0.0)
        self.service_s = service_s
        self.served = 0
        self._free_at = 0.0
        self.late_s: list[float] = []  # per server-side answer: how long after its queue time it came

    def serve(self, queries):
        for q in queries:
            done = max(q.arrival, self._free_at) + self.service_s
            self._free_at = done
            wait = done - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            self.served += 1
            self.complete([(q, np.asarray([q.index % 2], dtype=np.int32))])
            if getattr(self, "spec", None) is not None and self.spec.scenario == "server":  # not a warm-up
                self.late_s.append(time.perf_counter() - done)

    def late_share(self, by_s: float) -> float:
        """The share of Server answers that came more than ``by_s`` after their time in the queue."""
        return sum(late > by_s for late in self.late_s) / max(len(self.late_s), 1)


def md1_wait_cdf(t: float, lam: float, service_s: float) -> float:
    """P(waiting time <= t) in an M/D/1 queue (Erlang's formula, exact for t a few service times)."""
    rho = lam * service_s
    return (1 - rho) * sum((lam * (k * service_s - t)) ** k / math.factorial(k) * math.exp(-lam * (k * service_s - t))
                           for k in range(int(t // service_s) + 1))


def md1_capacity(service_s: float, bound_s: float, percentile: float) -> float:
    """The highest arrival rate whose sojourn time (wait + service) stays under ``bound_s`` at ``percentile``."""
    lo, hi = 0.0, 1.0 / service_s
    for _ in range(60):
        mid = (lo + hi) / 2
        if md1_wait_cdf(bound_s - service_s, mid, service_s) >= percentile:
            lo = mid
        else:
            hi = mid
    return lo


def md1_simulated_capacity(service_s: float, bound_s: float, percentile: float, *, n: int = 40_000,
                           seed: int = 0) -> float:
    """The same capacity from a simulated queue (Lindley's recursion), to check the formula."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0, n)

    def tail(lam: float) -> float:
        arrivals = np.cumsum(gaps / lam)
        free, sojourn = 0.0, np.empty(n)
        for i, a in enumerate(arrivals):
            free = max(a, free) + service_s
            sojourn[i] = free - a
        return float(np.percentile(sojourn, percentile * 100))

    lo, hi = 0.0, 1.0 / service_s
    for _ in range(18):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if tail(mid) <= bound_s else (lo, mid)
    return lo


def mm1_capacity(service_s: float, bound_s: float, percentile: float) -> float:
    """M/M/1: the sojourn time is exponential with rate mu - lambda, so its percentile p is
    -ln(1 - p) / (mu - lambda), and the capacity is mu + ln(1 - p) / bound."""
    return 1.0 / service_s + math.log(1 - percentile) / bound_s


class SimulatedQueue:
    """A Server point as LoadGen would run it on a FIFO queue, simulated: Poisson arrivals from the
    point's seed, ``servers`` servers, service times from ``service`` (``"fixed"``: M/D/c,
    ``"exponential"``: M/M/c). It returns the PointResult the search reads: LoadGen's over-latency
    count, its percentiles and its early-stopping verdict, so the search runs unchanged and fast."""

    def __init__(self, service_s: float, bound_ms: float, percentile: float, *, service: str = "fixed",
                 servers: int = 1, min_queries: int = 459, min_duration_s: float = 2.0):
        self.service_s, self.bound_s, self.percentile = service_s, bound_ms / 1000, percentile
        self.service, self.servers = service, servers
        self.min_queries, self.min_duration_s = min_queries, min_duration_s

    def sojourns(self, rate: float, seed: int) -> np.ndarray:
        import heapq

        rng = np.random.default_rng(seed)
        # LoadGen issues the minimum queries or the minimum duration's worth, whichever is more.
        n = max(self.min_queries, int(math.ceil(rate * self.min_duration_s)))
        arrivals = np.cumsum(rng.exponential(1.0 / rate, n))
        service = (np.full(n, self.service_s) if self.service == "fixed" else rng.exponential(self.service_s, n))
        free = [0.0] * self.servers  # when each server is next free (FIFO: the earliest free one serves)
        out = np.empty(n)
        for i in range(n):
            start = max(arrivals[i], heapq.heappop(free))
            heapq.heappush(free, start + service[i])
            out[i] = start + service[i] - arrivals[i]
        return out

    def measure(self, rate: float, seed: int) -> PointResult:
        from quantbench.serving.early_stopping import passes

        sojourn = self.sojourns(rate, seed)
        n, over = len(sojourn), int((sojourn > self.bound_s).sum())
        ms = np.sort(sojourn) * 1000
        latency = {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}
        valid = passes(n, over, self.percentile)
        return PointResult("server", valid, [] if valid else ["early stopping was not satisfied"],
                           completed_qps=rate, latency_ms=latency, query_count=n, overlatency_queries=over,
                           percentile=self.percentile)
