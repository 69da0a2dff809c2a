"""Quality of a causal LM on held-out text, and its agreement with the fp32 variant.

The figures llama.cpp's perplexity tool reports per quant type, plus two of our own:

* **Perplexity and bits per byte.** Windowing: each text is scored on its own (no context
  carried across texts), from the BOS token, truncated to the model's ``max_seq_len``; every
  token of the text is predicted. Perplexity = exp(total NLL / predicted tokens); bits per byte
  = total NLL / (ln 2 x UTF-8 bytes of the texts), so two tokenizers compare.
* **KL divergence and top-1 agreement** of the next-token distributions against fp32, at every
  scored position (exact: fp32's log-probabilities are kept, float32, for the run).
* **Greedy continuation agreement:** the share of generated tokens identical to fp32's before
  the first difference, over prompts cut from held-out text to one length (no padding).
* **Zero-shot labels** (zero_shot.py): the log-likelihood of each label word after a fixed
  prompt; the softmax over the label words is the class probability (accuracy and the probe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantbench.tasks.generation.task import bos_id

WINDOWING = ("each text scored alone from the BOS token (no cross-text context), truncated to max_seq_len "
             "tokens; every text token predicted")


@dataclass
class TextScores:
    """Sums over the scored texts, and per-position figures against a reference."""

    nll: float = 0.0
    tokens: int = 0
    bytes: int = 0
    texts: int = 0
    logprobs: list[np.ndarray] = field(default_factory=list)  # kept for the reference variant only
    kl: list[np.ndarray] = field(default_factory=list)
    top1_same: list[np.ndarray] = field(default_factory=list)
    argmax: list[np.ndarray] = field(default_factory=list)

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / self.tokens)

    @property
    def bits_per_byte(self) -> float:
        return self.nll / (math.log(2) * self.bytes)


def text_ids(tokenizer, text: str, max_len: int) -> list[int]:
    bos = bos_id(tokenizer)
    body = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = ([bos] if bos is not None else []) + body
    return ids[:max_len]


def pad_rows(rows: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return ids, mask


def score_texts(variant, tokenizer, texts: list[str], *, batch_size: int, max_len: int,
                reference: np.ndarray | None = None, keep_logprobs: bool = False) -> TextScores:
    """Token log-likelihoods of ``texts``; against ``reference`` log-probs (positions in the same order)."""
    import torch

    scores = TextScores(texts=len(texts), bytes=sum(len(t.encode("utf-8")) for t in texts))
    # Batched in order of length so each batch pads little; the order is the same for every
    # variant, so positions line up with the reference's.
    rows = sorted((text_ids(tokenizer, t, max_len) for t in texts), key=len)
    pad = variant.pad_token_id
    offset = 0
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = [r for r in rows[start:start + batch_size] if len(r) > 1]
            if not batch:
                continue
            ids, mask = pad_rows(batch, pad)
            logits = variant.forward(variant.prepare({"input_ids": ids, "attention_mask": mask}))
            logp = torch.log_softmax(torch.as_tensor(logits).float().cpu(), dim=-1)
            for i, row in enumerate(batch):
                n = len(row) - 1  # positions that predict a text token
                rows_logp = logp[i, :n]
                targets = torch.as_tensor(row[1:], dtype=torch.long)
                scores.nll -= float(rows_logp.gather(1, targets[:, None]).sum())
                scores.tokens += n
                if keep_logprobs:
                    scores.logprobs.append(rows_logp.numpy().copy())
                if reference is not None:
                    ref = torch.as_tensor(reference[offset:offset + n])
                    scores.kl.append((ref.exp() * (ref - rows_logp)).sum(-1).clamp_min(0.0).numpy())
                    scores.top1_same.append((ref.argmax(-1) == rows_logp.argmax(-1)).numpy())
                offset += n
    return scores


def reference_logprobs(scores: TextScores) -> np.ndarray:
    return np.concatenate(scores.logprobs, axis=0)


def quality_figures(scores: TextScores, reference: TextScores | None) -> dict[str, Any]:
    """Perplexity, bits per byte, and (against fp32) ΔPPL %, KL and top-1 agreement."""
    out: dict[str, Any] = {"perplexity": round(scores.perplexity, 4), "bits_per_byte": round(scores.bits_per_byte, 5),
                           "n_texts": scores.texts, "n_tokens": scores.tokens, "n_bytes": scores.bytes,
                           "windowing": WINDOWING}
    if reference is not None:
        kl = np.concatenate(scores.kl) if scores.kl else np.zeros(0)
        same = np.concatenate(scores.top1_same) if scores.top1_same else np.zeros(0, dtype=bool)
        out.update({
            "fp32_perplexity": round(reference.perplexity, 4),
            "perplexity_delta_pct": round(100.0 * (scores.perplexity / reference.perplexity - 1.0), 4),
            "kl_divergence": round(float(kl.mean()), 6),
            "kl_divergence_p99": round(float(np.percentile(kl, 99)), 6),
            "top1_agreement": round(float(same.mean()), 6),
        })
    return out


def continuation_prompts(tokenizer, texts: list[str], *, count: int, length: int) -> np.ndarray:
    """``count`` prompts of exactly ``length`` tokens (BOS included), each the start of one text."""
    prompts = [ids[:length] for ids in (text_ids(tokenizer, t, 10_000) for t in texts) if len(ids) >= length]
    return np.asarray(prompts[:count], dtype=np.int64).reshape(-1, length)


def greedy_continuations(variant, prompts: np.ndarray, *, new_tokens: int, batch_size: int) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            ids = prompts[start:start + batch_size]
            inputs = variant.prepare({"input_ids": ids, "attention_mask": np.ones_like(ids)})
            tokens = variant.generate(inputs, new_tokens=new_tokens)
            out.append(tokens.cpu().numpy() if hasattr(tokens, "cpu") else np.asarray(tokens))
    return np.concatenate(out, axis=0) if out else np.zeros((0, new_tokens), dtype=np.int64)


def continuation_agreement(tokens: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean share of tokens equal to fp32's before the first difference, and the share identical."""
    same = tokens == reference
    prefix = np.where(same.all(axis=1), same.shape[1], same.argmin(axis=1))
    return {"continuation_agreement": round(float((prefix / same.shape[1]).mean()), 6),
            "continuation_exact_match": round(float(same.all(axis=1).mean()), 6),
            "continuation_prompts": int(len(tokens)), "continuation_tokens": int(same.shape[1])}
