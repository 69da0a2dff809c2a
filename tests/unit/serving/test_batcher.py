"""The dynamic batcher keeps Triton's semantics: a full batch at once, a partial one after the delay."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from quantbench.serving.batcher import DynamicBatcher


@dataclass
class Item:
    name: int
    arrival: float


class Recorder:
    def __init__(self):
        self.batches: list[tuple[float, list[int]]] = []
        self.done = threading.Event()
        self.expected = 0

    def __call__(self, batch):
        self.batches.append((time.perf_counter(), [i.name for i in batch]))
        if sum(len(b) for _, b in self.batches) >= self.expected:
            self.done.set()


def run(items_at: list[float], *, max_batch: int, delay_s: float, together: bool = False
        ) -> list[tuple[float, list[int]]]:
    """Put items at the given offsets (s), or all at once, and return each batch with the time it ran."""
    recorder = Recorder()
    recorder.expected = len(items_at)
    batcher = DynamicBatcher(recorder, max_batch=max_batch, max_queue_delay_s=delay_s, on_error=pytest.fail)
    start = time.perf_counter()
    try:
        if together:
            batcher.put([Item(i, time.perf_counter()) for i in range(len(items_at))])
        for i, at in enumerate(items_at if not together else []):
            time.sleep(max(0.0, start + at - time.perf_counter()))
            batcher.put([Item(i, time.perf_counter())])
        assert recorder.done.wait(5)
    finally:
        batcher.close()
    return [(t - start, names) for t, names in recorder.batches]


def test_a_full_batch_runs_at_once():
    batches = run([0.0] * 4, max_batch=4, delay_s=1.0)
    (when, names), = batches
    assert names == [0, 1, 2, 3] and when < 0.5  # not after the 1 s delay


def test_a_partial_batch_waits_for_the_delay_from_its_oldest_request():
    batches = run([0.0, 0.02], max_batch=8, delay_s=0.15)
    (when, names), = batches
    assert names == [0, 1]
    assert 0.14 <= when < 0.5  # the oldest waited its full queue delay, not the newest


def test_batches_never_exceed_the_maximum_and_keep_arrival_order():
    batches = run([0.0] * 10, max_batch=4, delay_s=0.0, together=True)
    assert [names for _, names in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_zero_delay_serves_what_is_queued_without_waiting():
    batches = run([0.0, 0.3], max_batch=8, delay_s=0.0)
    assert [names for _, names in batches] == [[0], [1]]


def test_a_failing_batch_is_reported_and_stops_the_batcher():
    errors = []
    batcher = DynamicBatcher(lambda batch: 1 / 0, max_batch=2, max_queue_delay_s=0.0, on_error=errors.append)
    batcher.put([Item(0, time.perf_counter())])
    deadline = time.perf_counter() + 5
    while not errors and time.perf_counter() < deadline:
        time.sleep(0.01)
    batcher.close()
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)
