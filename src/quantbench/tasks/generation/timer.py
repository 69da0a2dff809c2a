"""The step timer of a generation round: when each step's logits arrive.

transformers calls a LogitsProcessor once per generated token, right after that step's
forward pass; stamping there splits one ``generate`` into the time to first token (prefill)
and the time of every decode step, as optimum-benchmark's per-token tracker does. A backend
that runs its own decode loop (llama.cpp) calls the timer the same way after each step.
"""

from __future__ import annotations

import time

from quantbench.errors import QuantbenchError


class StepTimer:
    """A transformers LogitsProcessor that records when each generation step's logits arrive."""

    def __init__(self, synchronize):
        self.synchronize = synchronize
        self.started = 0.0
        self.stamps: list[float] = []
        self.ttft_s: list[float] = []  # one per round
        self.tpot_s: list[float] = []  # one per round: decode seconds per token after the first
        self.step_s: list[float] = []  # every decode step of every round: what the gate tests decode on

    def start(self) -> None:
        self.stamps = []
        self.started = time.perf_counter()

    def __call__(self, input_ids, scores):
        self.synchronize()
        self.stamps.append(time.perf_counter())
        return scores

    def finish(self, new_tokens: int) -> None:
        if len(self.stamps) != new_tokens:
            raise QuantbenchError(f"generate made {len(self.stamps)} steps, expected {new_tokens}")
        self.ttft_s.append(self.stamps[0] - self.started)
        if new_tokens > 1:
            self.tpot_s.append((self.stamps[-1] - self.stamps[0]) / (new_tokens - 1))
            self.step_s.extend(b - a for a, b in zip(self.stamps, self.stamps[1:]))

    def reset(self) -> None:
        self.ttft_s, self.tpot_s, self.step_s = [], [], []
