"""The drift reference: a fixed workload timed between a cell's rounds, so a gate can tell a
slower machine from a slower variant.

Shared machines change speed under the harness. On the 2-core CI VM, the same cell moved by
up to 80 % between back-to-back sweeps, and the whole machine by 23 % between one minute and
the next; a reference timed in another process or minutes apart did not follow it. Timed a
fraction of a second before each round, it does: the ratio round / reference stayed within
±5 % across processes while the rounds alone moved by 2×.

The workload is a one-layer BERT with fixed random weights, built from a config (nothing is
downloaded) and run in fp32 on the cell's device with the harness's threads. No code under test
runs in it, so a slower variant moves the ratio and a slower machine does not. Its name and
software versions are recorded; a gate only divides by references that match.
"""

from __future__ import annotations

import math
import time
from typing import Any

#: Names the workload below. Change it whenever the workload changes: gates compare equal names only.
REFERENCE_NAME = "bert-1layer-384h-fp32-bs4-seq64"

_CONFIG = dict(hidden_size=384, num_hidden_layers=1, num_attention_heads=12, intermediate_size=1536,
               vocab_size=1000, max_position_embeddings=128)
_SHAPE = (4, 64)


class DriftReference:
    """The reference workload on one device; :meth:`time_once` times one synchronized call."""

    def __init__(self, device: str):
        import torch
        from transformers import BertConfig, BertModel

        from quantbench import devices

        self.device = device
        self._sync = lambda: devices.synchronize(device)
        with torch.random.fork_rng(devices=[]):  # fixed weights without touching the global RNG
            torch.manual_seed(0)
            self._model = BertModel(BertConfig(**_CONFIG)).eval().to(device)
            self._inputs = torch.randint(0, _CONFIG["vocab_size"], _SHAPE).to(device)
        for _ in range(3):  # warm: first calls allocate and pick kernels
            self.time_once()

    def time_once(self) -> float:
        import torch

        with torch.inference_mode():
            started = time.perf_counter()
            self._model(input_ids=self._inputs)
            self._sync()
            return time.perf_counter() - started

    def describe(self) -> dict[str, Any]:
        """What a gate must find equal on both sides before it divides by this reference."""
        import torch

        return {"name": REFERENCE_NAME, "device": self.device, "torch": torch.__version__,
                "threads": torch.get_num_threads()}


class RoundPairing:
    """pytest-benchmark ``setup`` hook: before each round, re-time the reference if ``every_s``
    has passed, and remember which reference time the round is paired with.

    Re-timing before every round would slow short rounds (the reference evicts their caches); a
    quarter second apart still sits inside one speed regime of the machine (those last seconds).
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
