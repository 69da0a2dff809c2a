"""The system under test LoadGen drives, and every query's own timestamps.

A :class:`ServedSystem` gets LoadGen's queries (``issue_queries``), hands them to its server
(``submit``: a batcher in this process, or an HTTP server) and answers them: ``first_token`` for a
generation's first streamed token (LoadGen's ``FirstTokenComplete``, its TTFT), ``complete`` for the
answer (``QuerySamplesComplete`` with the token count). It keeps what it saw itself: when each
query arrived, its first token, every token, its end (``QueryLog``), so client-side percentiles,
inter-token latency and goodput do not depend on LoadGen's log, and LoadGen's counts can be checked
against them.

A query is answered once. After ``abort()`` (Ctrl-C, a failure) every open query and every later
one is answered at once with an empty response and late answers are dropped, so LoadGen finishes
its test; the system then serves no further test. A failure in the serving thread is kept and
raised by ``check()`` in the thread that runs LoadGen.

``direct(indexes)`` serves samples outside LoadGen (warm-up, throughput estimate): nothing is
reported to LoadGen then.
"""

from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from quantbench.errors import QuantbenchError


@dataclass
class Query:
    id: int  # LoadGen's response id (negative for a direct query)
    index: int  # the sample in the query sample library
    arrival: float  # time.perf_counter() when it was issued
    first: float | None = None
    done: float | None = None
    tokens: int = 0
    token_times: list[float] = field(default_factory=list)  # every output token (generation)


class ServedSystem(abc.ABC):
    """Base of every SUT: LoadGen's callbacks, the query log, answers, abort and failure."""

    token_latencies = False  # generation SUTs report first tokens and token counts
    kind = "system"  # what serves the queries, for the record

    def __init__(self, sample_count: int):
        if sample_count < 1:
            raise QuantbenchError("the query sample library is empty: nothing to serve")
        self.sample_count = sample_count
        self._lock = threading.Lock()
        self._open: dict[int, Query] = {}
        self.finished: list[Query] = []
        self.aborted = False
        self.error: BaseException | None = None
        self._direct = False
        self._direct_ids = 0

    # --- LoadGen's callbacks ---------------------------------------------------------------------

    def issue_queries(self, samples) -> None:
        now = time.perf_counter()
        queries = [Query(int(s.id), int(s.index), now) for s in samples]
        with self._lock:
            for q in queries:
                self._open[q.id] = q
            orphans = self._take_open() if self.aborted else None
        if orphans is not None:
            self._answer_empty(orphans)
            return
        self.submit(queries)

    def flush_queries(self) -> None:
        """Nothing held back: every query is submitted as it arrives."""

    def load_samples(self, indexes) -> None:
        """Every sample was encoded before the run (the QSL's samples live in memory)."""

    def unload_samples(self, indexes) -> None:
        """See :meth:`load_samples`."""

    # --- life cycle --------------------------------------------------------------------------------

    def begin(self, spec) -> None:
        """A new LoadGen test: an empty query log. A stopped system (Ctrl-C, a failure) serves no more."""
        self.check()
        if self.aborted:
            raise QuantbenchError(f"{self.kind} was stopped; it serves no further test")
        with self._lock:
            self._open, self.finished = {}, []
        self.spec = spec

    def check(self) -> None:
        if self.error is not None:
            error = self.error
            raise error if isinstance(error, QuantbenchError) else QuantbenchError(
                f"{self.kind} failed while serving: {type(error).__name__}: {error}")

    def fail(self, exc: BaseException) -> None:
        """The serving side broke: keep the error for ``check()`` and answer every open query."""
        if self.error is None:
            self.error = exc
        self.abort()

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            orphans = self._take_open()
        self._answer_empty(orphans)
        self.stop_work()

    def stop_work(self) -> None:
        """Subclasses drop queued work here (the batcher's queue, open HTTP streams)."""

    def close(self) -> None:
        """Release what the system holds (threads, a server process)."""

    def own_timings(self) -> dict[str, Any] | None:
        """The serving side's own timings of the last test (a server's per-request timings), if it has any."""
        return None

    def server_pid(self) -> int | None:
        """The process that serves, when it is not this one (its CPU time is recorded per point)."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"system": self.kind}

    def _take_open(self) -> list[Query]:
        """Every open query, now closed (under the lock): whoever takes a query answers it."""
        taken = [] if self._direct else list(self._open.values())
        self._open.clear()
        return taken

    @staticmethod
    def _answer_empty(queries: list[Query]) -> None:
        """Answer ``queries`` with empty responses (outside the lock: LoadGen may call back in)."""
        if queries:
            lg = _loadgen()
            lg.QuerySamplesComplete([lg.QuerySampleResponse(q.id, 0, 0) for q in queries])

    # --- answers (from the serving threads) -----------------------------------------------------------

    def first_token(self, queries: Sequence[Query], at: float | None = None) -> None:
        """The first output token of each query is out (LoadGen's TTFT)."""
        at = time.perf_counter() if at is None else at
        with self._lock:
            live = [q for q in queries if q.id in self._open and q.first is None]
            for q in live:
                q.first = at
            report = live and not self._direct
        if report:
            lg = _loadgen()
            lg.FirstTokenComplete([lg.QuerySampleResponse(q.id, 0, 0, 1) for q in live])

    def complete(self, answers: Sequence[tuple[Query, np.ndarray]], at: float | None = None) -> None:
        """Answer queries: each with its response array (a label, or output token ids)."""
        at = time.perf_counter() if at is None else at
        with self._lock:
            live = [(q, np.ascontiguousarray(data)) for q, data in answers if q.id in self._open]
            for q, data in live:
                q.done = at
                q.tokens = int(data.size) if self.token_latencies else q.tokens
                self._open.pop(q.id)
                self.finished.append(q)
            report = live and not self._direct
        if report:  # outside the lock: LoadGen may issue the next query from this call
            lg = _loadgen()
            if self.token_latencies:
                responses = [lg.QuerySampleResponse(q.id, d.ctypes.data, d.nbytes, int(d.size)) for q, d in live]
            else:
                responses = [lg.QuerySampleResponse(q.id, d.ctypes.data, d.nbytes) for q, d in live]
            lg.QuerySamplesComplete(responses)  # LoadGen copies the data before it returns

    # --- serving -------------------------------------------------------------------------------------

    @abc.abstractmethod
    def submit(self, queries: list[Query]) -> None:
        """Start serving ``queries`` (LoadGen's issue callback: return at once, answer through ``answer``)."""

    def direct(self, indexes: list[int], *, timeout_s: float = 600.0) -> float:
        """Serve ``indexes`` at once, outside LoadGen (warm-up, a throughput estimate); seconds taken."""
        queries = []
        with self._lock:
            self._direct = True
            for index in indexes:
                self._direct_ids -= 1
                queries.append(Query(self._direct_ids, index, time.perf_counter()))
                self._open[queries[-1].id] = queries[-1]
        started = time.perf_counter()
        try:
            self.submit(queries)
            deadline = started + timeout_s
            while any(q.done is None for q in queries):
                self.check()
                if time.perf_counter() > deadline:
                    raise QuantbenchError(f"{self.kind}: {len(indexes)} queries not answered in {timeout_s:.0f} s")
                time.sleep(0.002)
            return time.perf_counter() - started
        finally:
            with self._lock:
                for q in queries:
                    self._open.pop(q.id, None)
                self.finished = []
                self._direct = False


def _loadgen():
    from quantbench.serving.loadgen import loadgen

    return loadgen()
