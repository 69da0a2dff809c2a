"""Zero-shot classification with a causal LM: the log-likelihood of each label word after a prompt.

* **Prompt.** An instruct model with a chat template gets the question as a user turn, through
  its own template, and the label word is read as the first word of the assistant's answer. A
  model without one gets a plain ``Tweet: ...\\nSentiment (a or b):`` completion prompt.
* **Contextual calibration** (Zhao et al. 2021, "Calibrate Before Use"): the label-word
  probabilities after content-free inputs ("N/A", "", "[MASK]") measure the prompt's own bias
  towards a label; each text's probabilities are divided by them (then renormalised). A small
  LM that answers "negative" to everything otherwise scores the majority rate and says nothing
  about its variants. The content-free probabilities are recorded.

The calibrated log-probabilities act as logits: their softmax is the class probability, so
accuracy, data fairness and the counterfactual probe score an LLM the way they score a classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from quantbench.quality import batching
from quantbench.quality.lm_scoring import pad_rows, text_ids

PLAIN_TEMPLATE = "Tweet: {text}\nSentiment ({choices}):"
CHAT_SYSTEM = "Classify the sentiment of the user's tweet. Answer with one word: {choices}."
CONTENT_FREE = ("N/A", "", "[MASK]")
CALIBRATION = "contextual calibration (Zhao et al. 2021): label probabilities divided by their mean over content-free inputs"


@dataclass(frozen=True)
class Prompting:
    """How a model is asked: its chat template or the plain completion prompt."""

    chat: bool
    template: str
    label_prefix: str  # " " before a label word in plain completion; none after a chat turn

    def describe(self) -> dict[str, Any]:
        return {"zero_shot_prompt": "the model's chat template: the instruction as system turn, the text as user "
                                    "turn" if self.chat else "plain completion prompt",
                "zero_shot_template": self.template}


def prompting_for(tokenizer) -> Prompting:
    if getattr(tokenizer, "chat_template", None):
        return Prompting(True, CHAT_SYSTEM, "")
    return Prompting(False, PLAIN_TEMPLATE, " ")


def _prompt_ids(tokenizer, prompting: Prompting, text: str, choices: str) -> list[int]:
    if prompting.chat:
        turns = [{"role": "system", "content": prompting.template.format(choices=choices)},
                 {"role": "user", "content": text}]
        return list(tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=True))
    return text_ids(tokenizer, prompting.template.format(text=text, choices=choices), 10_000)


def _fit(tokenizer, prompting: Prompting, text: str, choices: str, budget: int) -> list[int]:
    """The prompt, with the *text* cut (never the question) so prompt plus label fit ``budget``."""
    ids = _prompt_ids(tokenizer, prompting, text, choices)
    if len(ids) <= budget:
        return ids
    overhead = len(ids) - len(tokenizer(text, add_special_tokens=False)["input_ids"])
    keep = max(1, budget - overhead)
    cut = tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:keep])
    return _prompt_ids(tokenizer, prompting, cut, choices)[:budget]


def label_logliks(variant, tokenizer, texts: list[str], label_names: list[str], *, batch_size: int,
                  max_len: int, mode: str) -> np.ndarray:
    """(texts, labels) log-likelihood of each label word after the prompt (uncalibrated)."""
    import torch

    prompting = prompting_for(tokenizer)
    choices = " or ".join(label_names)
    label_ids = [tokenizer(prompting.label_prefix + name, add_special_tokens=False)["input_ids"]
                 for name in label_names]
    longest = max(len(ids) for ids in label_ids)
    prompts = [_fit(tokenizer, prompting, t, choices, max_len - longest) for t in texts]
    out = np.zeros((len(texts), len(label_names)), dtype=np.float64)
    # Single-token labels (the usual case) need one forward per prompt, read at its last position;
    # longer labels append each label and sum its tokens (one forward per label).
    single = all(len(label) == 1 for label in label_ids)
    passes = [(None, [t[0] for t in label_ids])] if single else list(enumerate(label_ids))
    with torch.inference_mode():
        for j, label in passes:
            rows = prompts if single else [p + label for p in prompts]
            for index in batching.batches([len(r) for r in rows], mode, batch_size):
                batch = [rows[i] for i in index]
                ids, mask = pad_rows(batch, variant.pad_token_id)
                inputs = variant.prepare({"input_ids": ids, "attention_mask": mask})
                if single:  # only each prompt's last position is read
                    last = variant.logits_at(inputs, [len(row) - 1 for row in batch])
                    logp = torch.log_softmax(torch.as_tensor(last).float().cpu(), dim=-1)
                    out[index] = logp[:, torch.as_tensor(label)].numpy()
                    continue
                logits = variant.forward(inputs)
                logp = torch.log_softmax(torch.as_tensor(logits).float().cpu(), dim=-1)
                for k, (i, row) in enumerate(zip(index, batch)):
                    first = len(row) - len(label)  # position of the label's first token
                    positions = torch.arange(first - 1, len(row) - 1)
                    out[i, j] = float(logp[k, positions, torch.as_tensor(label)].sum())
    return out


def _label_logprobs(logliks: np.ndarray) -> np.ndarray:
    """Log-probabilities over the label words alone (each row normalised)."""
    shifted = logliks - logliks.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def calibrated_scores(variant, tokenizer, texts: list[str], label_names: list[str], *, batch_size: int,
                      max_len: int, mode: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Calibrated label log-probabilities (the class logits) and what the calibration found."""
    raw = _label_logprobs(label_logliks(variant, tokenizer, texts, label_names, batch_size=batch_size,
                                        max_len=max_len, mode=mode))
    free = _label_logprobs(label_logliks(variant, tokenizer, list(CONTENT_FREE), label_names, batch_size=1,
                                         max_len=max_len, mode=batching.ALONE))
    prior = np.exp(free).mean(axis=0)  # mean content-free probability of each label
    calibrated = raw - np.log(prior)[None, :]
    facts = {"zero_shot_calibration": CALIBRATION, "content_free_inputs": list(CONTENT_FREE),
             "content_free_probs": {name: round(float(p), 6) for name, p in zip(label_names, prior)},
             "uncalibrated_predictions": {name: int((raw.argmax(axis=1) == k).sum())
                                          for k, name in enumerate(label_names)}}
    return calibrated, facts
