"""Variants served in this process: one model instance behind the dynamic (or static) batcher.

* :class:`ClassifierSystem`: any classification Variant (``prepare``/``forward``/``to_numpy``); a
  batch is the queued texts padded to the longest; the answer is the class scores (float32 logits,
  as a scoring API returns them), whose argmax is the prediction.
* :class:`GeneratorSystem`: any variant with a batched greedy ``generate`` (PyTorch, ONNX Runtime,
  OpenVINO causal LMs, llama.cpp through its bindings): a **static batcher**, since a batch runs to
  its end before the next forms. Its step processor timestamps every decode step: the first one is
  every query's ``FirstTokenComplete``, the last output token its answer (the token ids, their count).
  transformers 4.57's continuous batching (``generate_batch``) does not run on CPU (its paged cache
  sizes itself from CUDA memory figures and the generation thread dies), so PyTorch generation is
  served this way, and the record says so.

Model calls run under ``torch.inference_mode`` in the batcher's thread (it is thread-local).
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any

import numpy as np

from quantbench.serving.batcher import DynamicBatcher
from quantbench.serving.sut import Query, ServedSystem
from quantbench.serving.workload import Prompts, TextSamples

STATIC_BATCHER = ("static batcher over the variant's batched greedy generate (a batch runs to its end before the "
                  "next forms); transformers 4.57's continuous batching does not run on CPU")


def _inference_mode():
    try:
        import torch
    except ImportError:  # a runtime without torch: nothing to switch off
        return contextlib.nullcontext()
    return torch.inference_mode()


def _as_ids(out: Any) -> np.ndarray:
    """Token ids as int32 numpy (a torch tensor or an array)."""
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out).astype(np.int32)


class BatchedSystem(ServedSystem):
    """A SUT whose queries go through one :class:`DynamicBatcher` to ``serve``."""

    def __init__(self, sample_count: int, *, max_batch: int, max_queue_delay_s: float):
        super().__init__(sample_count)
        self.batcher = DynamicBatcher(self._serve_batch, max_batch=max_batch, max_queue_delay_s=max_queue_delay_s,
                                      on_error=self.fail)

    def submit(self, queries: list[Query]) -> None:
        self.batcher.put(queries)

    def stop_work(self) -> None:
        self.batcher.drain()

    def close(self) -> None:
        self.batcher.close()

    def _serve_batch(self, queries: list[Query]) -> None:
        with _inference_mode():
            self.serve(queries)

    @abc.abstractmethod
    def serve(self, queries: list[Query]) -> None:
        """Run one batch the batcher formed and answer each of its queries."""

    def describe(self) -> dict[str, Any]:
        return {"system": self.kind, "batcher": self.batcher.settings()}


class ClassifierSystem(BatchedSystem):
    kind = "in-process dynamic batcher"

    def __init__(self, variant, samples: TextSamples, *, max_batch: int, max_queue_delay_s: float):
        super().__init__(len(samples), max_batch=max_batch, max_queue_delay_s=max_queue_delay_s)
        self.variant, self.samples = variant, samples

    def scores(self, indexes: list[int]) -> np.ndarray:
        """Class scores (float32 logits) of the samples at ``indexes``, served as one padded batch."""
        variant = self.variant
        logits = variant.to_numpy(variant.forward(variant.prepare(self.samples.batch(indexes))))
        variant.synchronize()
        return np.asarray(logits, dtype=np.float32)

    def serve(self, queries: list[Query]) -> None:
        scores = self.scores([q.index for q in queries])
        self.complete([(q, scores[i]) for i, q in enumerate(queries)])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "padding": "each batch padded on the right to its longest text",
                "response": "the class scores (float32 logits); the prediction is their argmax"}


class GeneratorSystem(BatchedSystem):
    kind = "in-process static batcher"
    token_latencies = True

    def __init__(self, variant, prompts: Prompts, *, max_batch: int, max_queue_delay_s: float):
        super().__init__(len(prompts), max_batch=max_batch, max_queue_delay_s=max_queue_delay_s)
        self.variant, self.prompts = variant, prompts

    def serve(self, queries: list[Query]) -> None:
        variant = self.variant
        inputs = variant.prepare(self.prompts.batch([q.index for q in queries]))
        stamps: list[float] = []

        def step(input_ids, scores):
            import time

            variant.synchronize()
            now = time.perf_counter()
            stamps.append(now)
            if len(stamps) == 1:
                self.first_token(queries, now)
            return scores

        out = _as_ids(variant.generate(inputs, new_tokens=self.prompts.new_tokens, logits_processor=[step]))
        for q in queries:
            q.token_times = list(stamps)
        self.complete([(q, out[i]) for i, q in enumerate(queries)])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "generation": STATIC_BATCHER, "greedy": True,
                "new_tokens": self.prompts.new_tokens, "prompt_len": int(self.prompts.ids.shape[1])}
