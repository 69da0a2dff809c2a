"""Fresh prompts for a server with a prompt cache: no served prompt repeats an earlier one.

LoadGen issues the query sample library's indexes (``serving.samples``, 256 by default) and repeats
them when a point has more queries than samples, and again at every point. A server that caches
prompts (llama.cpp's server does by default) would then take a repeated prompt from its cache and
skip most of its prefill, and the measured TTFT would be a cache hit's. So in performance mode every query takes
the next prompt of this pool instead of its sample's:

* the pool is held-out text: the prompt split's texts after those the sample library read
  (workload.py), one token stream;
* a prompt is ``[BOS] + shared prefix + window``: a window of the stream, as long as the prompt
  length leaves; the first windows are disjoint (offsets 0, w, 2w, ...), then the same at offset 1,
  2, ..., so the first ``len / w`` share no text at all;
* a window whose first two tokens begin an earlier prompt of this pool is skipped, so no two
  prompts share more than their identical lead and one token: the held-out text has near-duplicate
  texts (airline tweets open alike), and a window cut from one would otherwise share most of an
  earlier prompt. A pool that runs out raises; it never wraps around to served prompts.

A prefix cache takes only a common *prefix* (llama.cpp's chunk shifting, ``--cache-reuse``, is off
by default), so with no shared prefix it can take at most BOS and one token of a prompt.
``shared_prefix_tokens`` adds a deliberate prefix: the first held-out tokens, the same in every
prompt (a system prompt's shape).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from quantbench.errors import QuantbenchError


#: Own tokens that must begin no earlier prompt: two, so a prompt shares at most one token past the lead.
DISTINCT_START = 2


class PoolExhausted(QuantbenchError):
    """Every window with a distinct start was served."""


class PromptPool:
    def __init__(self, held_out: np.ndarray, *, prompt_len: int, bos: int | None, shared_prefix_tokens: int = 0,
                 prefix_key: str = "shared_prefix_tokens"):
        """``prefix_key``: the suite key that set ``shared_prefix_tokens``, for the error naming it."""
        held_out = np.asarray(held_out, dtype=np.int64)
        lead = [] if bos is None else [int(bos)]
        self.prefix_tokens = int(shared_prefix_tokens)
        self.head = np.asarray(lead + held_out[:self.prefix_tokens].tolist(), dtype=np.int64)
        self.text = held_out[self.prefix_tokens:]
        self.prompt_len = int(prompt_len)
        self.own = self.prompt_len - len(self.head)
        if self.own < 1:
            raise QuantbenchError(
                f"{prefix_key}: {self.prefix_tokens} leaves no token of the "
                f"{self.prompt_len}-token prompt (prompt_lens) for the query's own text; use at most "
                f"{self.prompt_len - len(lead) - 1}")
        if len(self.text) < self.own:
            raise QuantbenchError(f"the prompt split has {len(held_out)} held-out tokens after the query sample "
                                  f"library's texts: too few for one fresh prompt of {self.prompt_len} tokens; raise "
                                  "dataset.train_samples or lower serving.samples")
        self.size = len(self.text) - self.own + 1  # windows, one per offset; distinct starts are fewer
        self._offsets = self._order()
        self._start = len(self.head) + min(DISTINCT_START, self.own)
        self.starts: set[bytes] = set()  # the lead and first own tokens of every prompt seen
        self.seen: set[bytes] = set()  # every prompt seen
        self.taken = 0

    def _order(self) -> Iterator[int]:
        for phase in range(self.own):
            yield from range(phase, len(self.text) - self.own + 1, self.own)

    def take(self) -> np.ndarray:
        """The next prompt no earlier :meth:`take` or :meth:`note` gave or saw."""
        for offset in self._offsets:
            prompt = np.concatenate([self.head, self.text[offset:offset + self.own]])
            start = prompt[:self._start].tobytes()
            if start not in self.starts:
                self.starts.add(start)
                self.seen.add(prompt.tobytes())
                self.taken += 1
                return prompt
        raise PoolExhausted(
            f"the fresh-prompt pool is used up: its {len(self.text)} held-out tokens gave this server "
            f"{self.taken} prompts with distinct starts; raise dataset.train_samples (more held-out text) or shorten "
            "the points (serving.max_duration_s)")

    def note(self, prompt: np.ndarray) -> bool:
        """A prompt served from elsewhere (a sample's own, AccuracyOnly): True when it was served before."""
        prompt = np.asarray(prompt, dtype=np.int64)
        key = prompt.tobytes()
        repeated = key in self.seen
        self.seen.add(key)
        self.starts.add(prompt[:self._start].tobytes())
        return repeated

    def describe(self) -> dict[str, Any]:
        return {"scheme": "every performance query (and warm-up) takes the next unused prompt of a pool of held-out "
                          "text (the prompt split after the sample library's texts): disjoint windows first, then "
                          "the same shifted by one token at a time, skipping a window whose first two tokens began "
                          "an earlier prompt: no prompt is sent twice, and two share at most the identical leading "
                          "tokens and one more; AccuracyOnly queries send their sample's own prompt (compared with "
                          "the variant's tokens)",
                "held_out_tokens": int(len(self.text) + self.prefix_tokens), "windows": int(self.size),
                "disjoint_prompts": int(len(self.text) // self.own), "prompt_len": self.prompt_len,
                "shared_prefix_tokens": self.prefix_tokens, "identical_leading_tokens": int(len(self.head)),
                "max_shared_leading_tokens": int(self._start - 1), "own_tokens": int(self.own)}
