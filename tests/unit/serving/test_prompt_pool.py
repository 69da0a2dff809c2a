"""Fresh prompts for a server with a prompt cache (serving/prompt_pool.py) and the held-out text
they are cut from (serving/workload.py)."""

from __future__ import annotations

import numpy as np
import pytest

from quantbench.errors import QuantbenchError
from quantbench.serving.prompt_pool import PoolExhausted, PromptPool
from quantbench.serving.workload import held_out_after

BOS = 1


def test_no_prompt_repeats_and_no_two_share_more_than_the_lead_and_one_token():
    rng = np.random.default_rng(0)
    # Held-out text with repeated passages, as near-duplicate tweets give: 40 tokens, three times over.
    passage = rng.integers(10, 60, size=40)
    text = np.concatenate([passage, rng.integers(10, 60, size=300), passage, passage])
    pool = PromptPool(text, prompt_len=8, bos=BOS)
    prompts = []
    with pytest.raises(PoolExhausted, match=r"its 420 held-out tokens gave this server \d+ prompts with distinct "
                                            r"starts; raise dataset.train_samples"):
        while True:
            prompts.append(pool.take())
    assert len(prompts) > 100 and all(len(p) == 8 and p[0] == BOS for p in prompts)
    assert len({p.tobytes() for p in prompts}) == len(prompts)  # never one twice
    assert len({p[:3].tobytes() for p in prompts}) == len(prompts)  # BOS and two tokens: a distinct start each
    # The first prompts are disjoint windows of the text, in order.
    assert [p[1:].tolist() for p in prompts[:3]] == [text[0:7].tolist(), text[7:14].tolist(), text[14:21].tolist()]
    assert pool.describe()["max_shared_leading_tokens"] == 2


def test_a_shared_prefix_leads_every_prompt():
    text = np.arange(100, 400)
    pool = PromptPool(text, prompt_len=10, bos=BOS, shared_prefix_tokens=4)
    prompts = [pool.take() for _ in range(50)]
    assert all(p[:5].tolist() == [BOS, 100, 101, 102, 103] for p in prompts)
    assert prompts[0][5:].tolist() == [104, 105, 106, 107, 108]  # the windows start after the prefix
    described = pool.describe()
    assert described["identical_leading_tokens"] == 5 and described["max_shared_leading_tokens"] == 6
    with pytest.raises(QuantbenchError, match=r"^serving.llama_server.shared_prefix_tokens: 9 leaves no token of the "
                                              r"10-token prompt \(prompt_lens\) for the query's own text; use at "
                                              r"most 8$"):
        PromptPool(text, prompt_len=10, bos=BOS, shared_prefix_tokens=9,
                   prefix_key="serving.llama_server.shared_prefix_tokens")


def test_a_sample_prompt_sent_as_it_is_counts_as_seen():
    text = np.arange(100, 200)
    pool = PromptPool(text, prompt_len=6, bos=BOS)
    first = pool.take()
    assert pool.note(first) is True  # the pool's own prompt, sent again: a repeat
    sample = np.asarray([BOS, 7, 8, 9, 10, 11])
    assert pool.note(sample) is False and pool.note(sample) is True


class WordTokenizer:
    """One token per word, as an HF tokenizer is called: a text or a list of texts."""

    def __call__(self, texts, add_special_tokens=False):
        one = isinstance(texts, str)
        ids = [[len(w) for w in t.split()] + [0] for t in ([texts] if one else texts)]  # 0: the newline
        return {"input_ids": ids[0] if one else ids}


def test_the_held_out_text_starts_after_the_texts_the_samples_read():
    texts = ["a bb ccc", "dddd", "ee f", "gg hhh iiii", "jjjjj", "kk"]
    # Two rows of 5 tokens after BOS: row 1 reads texts 1 ("dddd" + newline: 2), 2 (3) -> texts 0-2 read.
    held_out = held_out_after(texts, WordTokenizer(), rows=2, own_tokens=5)
    assert held_out.tolist() == [2, 3, 4, 0, 5, 0, 2, 0]
    assert held_out.dtype == np.int64
    # The same count as the prompts themselves read: they fit in those three texts, not in two.
    from quantbench.tasks.generation.task import TASK

    assert TASK.prompt_ids(texts[:3], WordTokenizer(), 5, 2).shape == (2, 5)
    with pytest.raises(QuantbenchError, match="too little text"):
        TASK.prompt_ids(texts[:2], WordTokenizer(), 5, 2)
