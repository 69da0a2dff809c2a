"""Text generation: a causal LM timed on greedy generation and scored on held-out text.

* **Inputs of a cell:** ``batch_size`` rows of real held-out text, each exactly ``prompt_len``
  tokens (tweets of the prompt split joined by newlines, then cut), so no row is padded. The
  prompt split is the dataset's training split: no quality figure reads it (quantbench.data keeps the
  splits disjoint).
* **Timed call:** one ``generate`` of ``new_tokens`` tokens per row, greedy, KV cache on,
  ``min_new_tokens == max_new_tokens``. A logits processor timestamps each step, so one round
  gives the time to first token (prefill) and the decode time per token, as optimum-benchmark's
  per-token tracker does (timer.py). On CUDA each stamp synchronizes first.
* **Quality** (quantbench.quality): lm_scoring.py (perplexity, KL and agreement against fp32),
  zero_shot.py (label likelihoods), generation.py (what a variant records).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantbench.errors import QuantbenchError
from quantbench.backends.hf import bos_id
from quantbench.task_kinds import GENERATION
from quantbench.tasks.base import Task
from quantbench.tasks.generation.timer import StepTimer


class TextGeneration(Task):
    def prompt_ids(self, texts: list[str], tokenizer, prompt_len: int, rows: int) -> np.ndarray:
        """``rows`` prompts of exactly ``prompt_len`` tokens: consecutive texts joined, then cut.

        Row ``i`` starts at text ``i``, so rows differ. Raises when the texts run out.
        """
        # Tokenized on demand: the prompts read the split's first few texts, not its thousands.
        token_lists: list[list[int]] = []
        bos = bos_id(tokenizer)
        prompts = []
        for row in range(rows):
            ids = [] if bos is None else [bos]
            index = row
            while len(ids) < prompt_len:
                if index >= len(texts):
                    raise QuantbenchError(f"the prompt split has too little text for {rows} prompts of "
                                          f"{prompt_len} tokens")
                while len(token_lists) <= index:
                    token_lists.append(tokenizer(texts[len(token_lists)] + "\n", add_special_tokens=False)["input_ids"])
                ids.extend(token_lists[index])
                index += 1
            prompts.append(ids[:prompt_len])
        return np.asarray(prompts, dtype=np.int64)

    def cell_inputs(self, splits, tokenizer, cell) -> dict[str, np.ndarray]:
        ids = self.prompt_ids(splits.train.texts, tokenizer, cell.seq_len, cell.batch_size)
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}

    def run_once(self, variant, inputs: Any, cell, timer: StepTimer | None = None) -> Any:
        """The timed call: one greedy generate of ``cell.new_tokens`` tokens per row."""
        if timer is not None:
            timer.start()
        out = variant.generate(inputs, new_tokens=cell.new_tokens, logits_processor=[timer] if timer else None)
        variant.synchronize()
        if timer is not None:
            timer.finish(cell.new_tokens)
        return out


TASK = TextGeneration(name=GENERATION)
