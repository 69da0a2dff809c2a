"""The drift reference: a fixed workload timed between a cell's rounds, so a gate can tell a
slower machine from a slower variant.

Shared machines change speed under the harness. On the 2-core CI VM, the same cell moved by
up to 80 % between back-to-back sweeps, and the whole machine by 23 % between one minute and
the next. Timed a fraction of a second before each round of a loop, the reference followed it:
round / reference held within ±5 % over 30 s in two processes while the rounds moved by up to 2×.
Over whole sweeps, the reference's median move across cells matched the cells' median move
within 5 points in six back-to-back pairs (x0.90 against x0.95 at worst). The machine does not slow
every cell alike, though: in two clean runs of one commit on the Zen 3 VM the cells' own references
moved x0.80 to x1.62, and dividing each cell by its own reference left one cell's p50 moving 9 % (a
robust standard deviation) between the runs, against 20 % with one median factor. So the gate divides
each cell by its own reference and adds the pair's remaining between-run noise to each interval
(gate/drift.py).

The workload is fixed and belongs to the cell's runtime (``Runtime.drift_reference``): a one-layer
BERT with seeded random weights for PyTorch cells, the two seeded feed-forward blocks of
:func:`ffn_weights` in another runtime's own graph format for its cells, in fp32 on the cell's
device and threads. No code under test runs in it, so a slower variant moves the ratio and a
slower machine does not. Its name, runtime version and threads are recorded; a gate only divides
by references that match.
"""

from __future__ import annotations

import abc
import math
import time
from typing import Any

import numpy as np

#: The feed-forward workload's shape (ffn_weights): runtimes build their reference from it.
FFN_ROWS, FFN_HIDDEN, FFN_INNER, FFN_LAYERS = 256, 384, 1536, 2


class DriftReference(abc.ABC):
    """A fixed workload; :meth:`time_once` times one synchronized call of it.

    Each backend gets a reference in its own runtime: a torch call between ORT rounds (or the
    reverse) would leave the other runtime's threads spinning and slow the next round (measured:
    ORT bs1 rounds 68 % slower right after a torch call).
    """

    name: str

    def __init__(self, device: str):
        self.device = device
        for _ in range(3):  # warm: first calls allocate and pick kernels
            self.time_once()

    @abc.abstractmethod
    def _call(self) -> None:
        """One complete call of the workload (synchronized on the device)."""

    def time_once(self) -> float:
        started = time.perf_counter()
        self._call()
        return time.perf_counter() - started

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What a gate must find equal on both sides before it divides by this reference."""


def ffn_weights() -> list[dict[str, np.ndarray]]:
    """The feed-forward blocks' fixed seeded weights, per layer: w1, b1, w2, b2 (in the order drawn)."""
    rng = np.random.default_rng(0)
    layers = []
    for _ in range(FFN_LAYERS):
        layers.append({name: (rng.standard_normal(shape) * 0.05).astype(np.float32) for name, shape in (
            ("w1", (FFN_HIDDEN, FFN_INNER)), ("b1", (FFN_INNER,)), ("w2", (FFN_INNER, FFN_HIDDEN)),
            ("b2", (FFN_HIDDEN,)))})
    return layers


def make_reference(backend: str, device: str, threads: int | None) -> DriftReference:
    """The reference for cells of ``backend`` on ``device``: the workload its runtime names
    (``Runtime.drift_reference``), else PyTorch's one-layer BERT."""
    from quantbench import registry
    from quantbench.backends.runtime import load

    factory = registry.runtime(backend).drift_reference or registry.runtime("pytorch").drift_reference
    return load(factory)(device, threads)


class RoundPairing:
    """pytest-benchmark ``setup`` hook: before each round, re-time the reference if ``every_s``
    has passed, and remember which reference time the round is paired with.

    The closer the pairing, the better it follows the machine (its speed regimes last seconds);
    ``every_s`` bounds the reference's cost on very short rounds.
    """

    def __init__(self, reference: DriftReference, every_s: float):
        self.reference = reference
        self.every_s = every_s
        self.per_round: list[float] = []
        self._latest = math.nan
        self._timed_at = -math.inf

    def __call__(self) -> None:
        now = time.perf_counter()
        if now - self._timed_at >= self.every_s:
            self._latest = self.reference.time_once()
            self._timed_at = time.perf_counter()
        self.per_round.append(self._latest)
        return None  # pytest-benchmark: no arguments for the round
