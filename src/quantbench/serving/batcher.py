"""The dynamic batcher: one model instance, a queue, a maximum batch and a maximum queue delay.

Triton's semantics (``dynamic_batching { max_queue_delay_microseconds }`` with ``max_batch_size``
and no preferred sizes): when the instance is free it takes the oldest request; if fewer than the
maximum batch are queued it waits for more, but never past the oldest request's arrival plus the
maximum queue delay; then it runs every queued request up to the maximum batch as one batch. A full
batch runs at once. The static batcher of generation is the same loop: a batch runs to its end
before the next one forms (no request joins a running batch).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Protocol


class Arrival(Protocol):
    arrival: float  # time.perf_counter() when the request arrived


class DynamicBatcher:
    def __init__(self, run: Callable[[list[Any]], None], *, max_batch: int, max_queue_delay_s: float,
                 on_error: Callable[[BaseException], None], name: str = "quantbench-batcher"):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.max_batch, self.max_queue_delay_s = max_batch, max(0.0, max_queue_delay_s)
        self._run, self._on_error = run, on_error
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._stopped = False
        self.batch_sizes: list[int] = []  # every batch it ran, in order
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def settings(self) -> dict[str, Any]:
        return {"max_batch": self.max_batch, "max_queue_delay_ms": round(self.max_queue_delay_s * 1000, 3),
                "semantics": "Triton dynamic batcher: a full batch runs at once, a partial one after the oldest "
                             "request waited max_queue_delay; one model instance"}

    def put(self, items: list[Arrival]) -> None:
        with self._cond:
            self._queue.extend(items)
            self._cond.notify()

    def drain(self) -> list[Arrival]:
        """Take every queued request out (an aborted run answers them itself)."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            return items

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def _next_batch(self) -> list[Arrival] | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            deadline = self._queue[0].arrival + self.max_queue_delay_s
            while len(self._queue) < self.max_batch and not self._stopped:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stopped or not self._queue:
                return None if self._stopped else []
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:  # drained while it waited
                continue
            self.batch_sizes.append(len(batch))
            try:
                self._run(batch)
            except BaseException as exc:  # noqa: BLE001 - reported to the system, which fails the point
                self._on_error(exc)
                return
