"""Zero-shot classification with a causal LM: the log-likelihood of each label word after a prompt.

The softmax over the label words is the class probability, so accuracy, data fairness and the
counterfactual probe score an LLM the way they score a classifier.
"""

from __future__ import annotations

import numpy as np

from quantbench.tasks.generation.scoring import pad_rows, text_ids

ZERO_SHOT_TEMPLATE = "Tweet: {text}\nSentiment ({choices}):"


def label_logliks(variant, tokenizer, texts: list[str], label_names: list[str], *, batch_size: int,
                  max_len: int) -> np.ndarray:
    """(texts, labels) log-likelihood of each label word (with a leading space) after the prompt."""
    import torch

    choices = " or ".join(label_names)
    label_ids = [tokenizer(" " + name, add_special_tokens=False)["input_ids"] for name in label_names]
    prompts = [text_ids(tokenizer, ZERO_SHOT_TEMPLATE.format(text=t, choices=choices), 10_000) for t in texts]
    # Keep the prompt's end (the question) when a text is long: cut the text, not the question.
    longest = max(len(ids) for ids in label_ids)
    prompts = [p if len(p) + longest <= max_len else p[:1] + p[len(p) - (max_len - longest - 1):] for p in prompts]
    order = np.argsort([len(p) for p in prompts], kind="stable")  # little padding per batch
    prompts = [prompts[i] for i in order]
    out = np.zeros((len(texts), len(label_names)), dtype=np.float64)
    # Single-token labels (the usual case) need one forward per prompt, read at its last position;
    # longer labels append each label and sum its tokens (one forward per label).
    single = all(len(label) == 1 for label in label_ids)
    passes = [(None, [t[0] for t in label_ids])] if single else list(enumerate(label_ids))
    with torch.inference_mode():
        for j, label in passes:
            rows = prompts if single else [p + label for p in prompts]
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                ids, mask = pad_rows(batch, variant.pad_token_id)
                inputs = variant.prepare({"input_ids": ids, "attention_mask": mask})
                if single:  # only each prompt's last position is read
                    last = variant.logits_at(inputs, [len(row) - 1 for row in batch])
                    logp = torch.log_softmax(torch.as_tensor(last).float().cpu(), dim=-1)
                    out[start:start + len(batch)] = logp[:, torch.as_tensor(label)].numpy()
                    continue
                logits = variant.forward(inputs)
                logp = torch.log_softmax(torch.as_tensor(logits).float().cpu(), dim=-1)
                for i, row in enumerate(batch):
                    first = len(row) - len(label)  # position of the label's first token
                    positions = torch.arange(first - 1, len(row) - 1)
                    out[start + i, j] = float(logp[i, positions, torch.as_tensor(label)].sum())
    restored = np.empty_like(out)
    restored[order] = out
    return restored
