"""The query sample library (LoadGen's QSL): what the queries carry, encoded before any run.

* **Classification:** the test split's texts, each tokenized alone (truncated to the model's
  maximum length, no padding); a batch is padded to its longest text, as a text server pads.
* **Generation:** prompts of exactly ``prompt_len`` tokens of held-out text (the prompt split, the
  same ids the generation cells time: ``TextGeneration.prompt_ids``), so no prompt is padded. Beside
  them, the rest of the prompt split (the texts those prompts do not read) as one token stream: a
  server with a prompt cache draws a fresh prompt from it for every query (serving/prompt_pool.py),
  since LoadGen repeats the library's samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextSamples:
    """Tokenized texts, one dict of 1-D arrays each, and the pad id of ``input_ids``."""

    rows: list[dict[str, np.ndarray]]
    pad_id: int
    texts: list[str]

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indexes: list[int]) -> dict[str, np.ndarray]:
        """The rows at ``indexes``, padded on the right to the longest (attention mask 0 there)."""
        width = max(len(self.rows[i]["input_ids"]) for i in indexes)
        out = {}
        for key in self.rows[indexes[0]]:
            fill = self.pad_id if key == "input_ids" else 0
            block = np.full((len(indexes), width), fill, dtype=np.int64)
            for r, i in enumerate(indexes):
                values = self.rows[i][key]
                block[r, :len(values)] = values
            out[key] = block
        return out


def text_samples(tokenizer, texts: list[str], max_len: int) -> TextSamples:
    encoded = tokenizer(list(texts), truncation=True, max_length=max_len)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    rows = [{k: np.asarray(encoded[k][i], dtype=np.int64) for k in keys} for i in range(len(texts))]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TextSamples(rows=rows, pad_id=int(pad), texts=list(texts))


@dataclass(frozen=True)
class Prompts:
    """Prompt token ids, (samples, prompt_len), and the new tokens each query asks for; ``held_out``:
    the prompt split's tokens after the texts the samples read (None where none was kept), and the
    ``bos`` id every prompt starts with."""

    ids: np.ndarray
    new_tokens: int
    held_out: np.ndarray | None = None
    bos: int | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def batch(self, indexes: list[int]) -> dict[str, np.ndarray]:
        ids = self.ids[indexes]
        return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def prompts(task, texts: list[str], tokenizer, *, prompt_len: int, samples: int, new_tokens: int) -> Prompts:
    from quantbench.backends.hf import bos_id

    ids = task.prompt_ids(texts, tokenizer, prompt_len, samples)
    bos = bos_id(tokenizer)
    return Prompts(ids=ids, new_tokens=new_tokens, held_out=held_out_after(
        texts, tokenizer, rows=len(ids), own_tokens=prompt_len - (bos is not None)), bos=bos)


def held_out_after(texts: list[str], tokenizer, *, rows: int, own_tokens: int) -> np.ndarray:
    """The texts after those ``rows`` prompts read, as one token stream (each text and a newline, as
    ``TextGeneration.prompt_ids`` tokenizes them). Row ``i`` reads texts ``i, i + 1, ...`` until it
    holds ``own_tokens`` tokens besides BOS, so the last row reads furthest."""
    lists = tokenizer([t + "\n" for t in texts], add_special_tokens=False)["input_ids"]
    end, have = rows - 1, 0
    while have < own_tokens:  # prompt_ids has read these texts, so the loop ends within them
        have += len(lists[end])
        end += 1
    rest = [token for ids in lists[end:] for token in ids]
    return np.asarray(rest, dtype=np.int64)
