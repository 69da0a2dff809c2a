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

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantbench.quality import batching, uncertainty
from quantbench.backends.hf import bos_id

DIVERGENCE_SOURCE = ("as llama.cpp's llama-perplexity --kl-divergence (tools/perplexity): KL(fp32 || variant) per "
                     "token; Δp = p_variant(true token) - p_fp32(true token); ln(PPL ratio) = mean per-token NLL "
                     "difference; ± = standard error over tokens; docs/generation.md")
WINDOWING = ("each text scored alone from the BOS token (no cross-text context), truncated to max_seq_len "
             "tokens; every text token predicted")


@dataclass
class TextScores:
    """Per-text, per-predicted-token figures, kept in text order (whatever the batching was)."""

    bytes: int = 0
    nll: list[np.ndarray] = field(default_factory=list)  # -log p(true token), per text
    logprobs: list[np.ndarray] = field(default_factory=list)  # full next-token log-probs: the reference only
    kl: list[np.ndarray] = field(default_factory=list)  # KL(fp32 || variant), per text
    top1_same: list[np.ndarray] = field(default_factory=list)
    delta_p: list[np.ndarray] = field(default_factory=list)  # p_variant(true) - p_fp32(true)

    @property
    def texts(self) -> int:
        return len(self.nll)

    @property
    def tokens(self) -> int:
        return int(sum(len(x) for x in self.nll))

    @functools.cached_property
    def token_nll(self) -> np.ndarray:
        return np.concatenate(self.nll) if self.nll else np.zeros(0)

    @property
    def perplexity(self) -> float:
        return math.exp(float(self.token_nll.mean()))

    @property
    def bits_per_byte(self) -> float:
        return float(self.token_nll.sum()) / (math.log(2) * self.bytes)


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


def forward_passes(variant, rows: list[list[int]], *, batch_size: int, mode: str, last_only: bool = False):
    """Score token-id ``rows`` in forward passes grouped as ``mode`` says (quality/batching.py).

    Yields ``(index, batch, logp)`` per pass: the rows' indexes, the rows, and float32 next-token
    log-probabilities on the CPU, shape (rows, width, vocab), right-padded (position ``t`` of a row
    predicts its token ``t + 1``). ``last_only`` computes each row's last position only (width 1),
    through ``variant.logits_at``. The caller holds ``torch.inference_mode``.
    """
    import torch

    for index in batching.batches([len(r) for r in rows], mode, batch_size):
        batch = [rows[i] for i in index]
        ids, mask = pad_rows(batch, variant.pad_token_id)  # right padding: positions read from the start
        inputs = variant.prepare({"input_ids": ids, "attention_mask": mask})
        if last_only:
            logits = torch.as_tensor(variant.logits_at(inputs, [len(row) - 1 for row in batch]))[:, None]
        else:
            logits = variant.forward(inputs)
        yield index, batch, torch.log_softmax(torch.as_tensor(logits).float().cpu(), dim=-1)


def score_texts(variant, tokenizer, texts: list[str], *, batch_size: int, max_len: int, mode: str,
                reference: list[np.ndarray] | None = None, keep_logprobs: bool = False) -> TextScores:
    """Token log-likelihoods of ``texts`` (and, against ``reference`` log-probs per text, the
    divergence figures), with texts grouped into passes as ``mode`` says (quality/batching.py)."""
    import torch

    rows = [text_ids(tokenizer, t, max_len) for t in texts]
    rows = [r for r in rows if len(r) > 1]  # a text of BOS alone predicts nothing
    per_text: list[dict[str, np.ndarray] | None] = [None] * len(rows)
    with torch.inference_mode():
        for index, batch, logp in forward_passes(variant, rows, batch_size=batch_size, mode=mode):
            for j, (i, row) in enumerate(zip(index, batch)):
                n = len(row) - 1  # positions that predict a text token
                row_logp = logp[j, :n]
                targets = torch.as_tensor(row[1:], dtype=torch.long)[:, None]
                out = {"nll": -row_logp.gather(1, targets)[:, 0].numpy().astype(np.float64)}
                if keep_logprobs:
                    out["logprobs"] = row_logp.numpy().copy()
                if reference is not None:
                    ref = torch.as_tensor(reference[i])
                    out["kl"] = (ref.exp() * (ref - row_logp)).sum(-1).clamp_min(0.0).numpy().astype(np.float64)
                    out["top1_same"] = (ref.argmax(-1) == row_logp.argmax(-1)).numpy()
                    out["delta_p"] = (np.exp(-out["nll"]) - ref.gather(1, targets)[:, 0].exp().numpy())
                per_text[i] = out
    scores = TextScores(bytes=sum(len(t.encode("utf-8")) for t in texts))
    for out in per_text:
        for key, value in out.items():
            getattr(scores, key).append(value)
    return scores


def reference_logprobs(scores: TextScores) -> list[np.ndarray]:
    return list(scores.logprobs)


def _interval_figures(name: str, mean: float, se: float, digits: int = 6) -> dict[str, Any]:
    return {name: round(mean, digits), f"{name}_se": round(se, digits),
            f"{name}_ci95": uncertainty.normal_ci(mean, se, digits)}


def perplexity_figures(scores: TextScores) -> dict[str, Any]:
    """Perplexity and bits per byte with their standard errors over tokens (llama.cpp's ±)."""
    mean_nll, se_nll = uncertainty.mean_se(scores.token_nll)
    ppl = math.exp(mean_nll)
    n = scores.tokens
    bpb_scale = n / (math.log(2) * scores.bytes)
    return {"perplexity": round(ppl, 4), "perplexity_se": round(ppl * se_nll, 4),
            "perplexity_ci95": [round(math.exp(mean_nll - uncertainty.Z95 * se_nll), 4),
                                round(math.exp(mean_nll + uncertainty.Z95 * se_nll), 4)],
            **_interval_figures("bits_per_byte", mean_nll * bpb_scale, se_nll * bpb_scale, 5),
            "n_texts": scores.texts, "n_tokens": n, "n_bytes": scores.bytes, "windowing": WINDOWING}


def divergence_figures(scores: TextScores, reference: TextScores) -> dict[str, Any]:
    """Against fp32 on the same token ids, as llama.cpp's ``llama-perplexity --kl-divergence``
    reports them: PPL ratio and ln-ratio (paired over tokens), KL mean ± SE / median / p99 / max,
    Δp mean ± SE and RMS ± SE, and the same-top-token share ± SE."""
    diff = scores.token_nll - reference.token_nll  # ln p_fp32(t) - ln p_variant(t), per token
    ln_ratio, ln_se = uncertainty.mean_se(diff)
    ratio = math.exp(ln_ratio)
    kl = np.concatenate(scores.kl)
    kl_mean, kl_se = uncertainty.mean_se(kl)
    dp = np.concatenate(scores.delta_p)
    dp_mean, dp_se = uncertainty.mean_se(dp)
    sq_mean, sq_se = uncertainty.mean_se(dp ** 2)
    rms = math.sqrt(sq_mean)
    same = np.concatenate(scores.top1_same)
    share = float(same.mean())
    z = uncertainty.Z95
    return {
        "fp32_perplexity": round(reference.perplexity, 4),
        **_interval_figures("ln_ppl_ratio", ln_ratio, ln_se),
        **_interval_figures("ppl_ratio", ratio, ratio * ln_se),
        "perplexity_delta_pct": round(100.0 * (ratio - 1.0), 4),
        "perplexity_delta_pct_ci95": [round(100.0 * (math.exp(ln_ratio - z * ln_se) - 1.0), 4),
                                      round(100.0 * (math.exp(ln_ratio + z * ln_se) - 1.0), 4)],
        **_interval_figures("kl_divergence", kl_mean, kl_se),
        "kl_divergence_median": round(float(np.median(kl)), 6),
        "kl_divergence_p99": round(float(np.percentile(kl, 99)), 6),
        "kl_divergence_max": round(float(kl.max()), 6),
        **_interval_figures("delta_p_mean", dp_mean, dp_se),
        # RMS = sqrt(mean Δp²); its SE by the delta method, as llama.cpp computes it.
        **_interval_figures("delta_p_rms", rms, sq_se / (2 * rms) if rms > 0 else 0.0),
        "top1_agreement": round(share, 6),
        "top1_agreement_se": round(math.sqrt(share * (1 - share) / same.size), 6),
        "top1_agreement_ci95": uncertainty.wilson(int(same.sum()), int(same.size)),
        "divergence_definitions": DIVERGENCE_SOURCE,
    }


def reference_divergence(scores: TextScores) -> dict[str, Any]:
    """The fp32 reference against itself: every divergence zero, its ratios one, by definition."""
    zero = [0.0, 0.0]
    return {"fp32_perplexity": round(scores.perplexity, 4),
            "ln_ppl_ratio": 0.0, "ln_ppl_ratio_se": 0.0, "ln_ppl_ratio_ci95": zero,
            "ppl_ratio": 1.0, "ppl_ratio_se": 0.0, "ppl_ratio_ci95": [1.0, 1.0],
            "perplexity_delta_pct": 0.0, "perplexity_delta_pct_ci95": zero,
            "kl_divergence": 0.0, "kl_divergence_se": 0.0, "kl_divergence_ci95": zero,
            "kl_divergence_median": 0.0, "kl_divergence_p99": 0.0, "kl_divergence_max": 0.0,
            "delta_p_mean": 0.0, "delta_p_mean_se": 0.0, "delta_p_mean_ci95": zero,
            "delta_p_rms": 0.0, "delta_p_rms_se": 0.0, "delta_p_rms_ci95": zero,
            "top1_agreement": 1.0, "top1_agreement_se": 0.0, "top1_agreement_ci95": [1.0, 1.0],
            "divergence_definitions": DIVERGENCE_SOURCE}


def batch_shift(alone: TextScores, served: TextScores, batch_size: int) -> dict[str, Any]:
    """Perplexity scored in served batches of ``batch_size`` against each text alone (paired per token)."""
    ln_shift, se = uncertainty.mean_se(served.token_nll - alone.token_nll)
    z = uncertainty.Z95
    key = f"perplexity_at_bs{batch_size}"
    return {key: round(served.perplexity, 4),
            f"{key}_delta_pct": round(100.0 * (math.exp(ln_shift) - 1.0), 4),
            f"{key}_delta_pct_ci95": [round(100.0 * (math.exp(ln_shift - z * se) - 1.0), 4),
                                      round(100.0 * (math.exp(ln_shift + z * se) - 1.0), 4)]}


def continuation_prompts(tokenizer, texts: list[str], *, count: int, length: int) -> np.ndarray:
    """``count`` prompts of exactly ``length`` tokens (BOS included), each the start of one text."""
    prompts = [ids[:length] for ids in (text_ids(tokenizer, t, 10_000) for t in texts) if len(ids) >= length]
    return np.asarray(prompts[:count], dtype=np.int64).reshape(-1, length)


def greedy_continuations(variant, prompts: np.ndarray, *, new_tokens: int, batch_size: int,
                         mode: str) -> np.ndarray:
    """Greedy tokens after each prompt. Prompts share one length (no padding); a batch-sensitive
    method still generates each alone, since its activation range would span the batch."""
    import torch

    if mode == batching.ALONE:
        batch_size = 1
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
    prefix = np.where(same.all(axis=1), same.shape[1], same.argmin(axis=1)) / same.shape[1]
    exact = same.all(axis=1)
    return {"continuation_agreement": round(float(prefix.mean()), 6),
            "continuation_agreement_ci95": uncertainty.bootstrap_ci(lambda idx: float(prefix[idx].mean()), len(prefix)),
            "continuation_exact_match": round(float(exact.mean()), 6),
            "continuation_exact_match_ci95": uncertainty.wilson(int(exact.sum()), int(exact.size)),
            "continuation_prompts": int(len(tokens)), "continuation_tokens": int(same.shape[1])}
