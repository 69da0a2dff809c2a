"""Tiny random models and data, built from a config in a second: what the fast tests run on."""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any

import yaml

WORDS = ["good", "great", "love", "happy", "nice", "bad", "awful", "hate", "sad", "poor", "the", "a", "movie",
         "day", "food", "was", "is", "very", "my", "friend", "sister", "brother", "she", "he", "today"]
POSITIVE, NEGATIVE = WORDS[:5], WORDS[5:10]
FILLER = WORDS[10:]


def make_tiny_checkpoint(path: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT classifier with random weights and a word-level tokenizer, saved as a checkpoint."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:
        # transformers 5 takes the vocabulary itself (a vocab_file keyword is ignored: every word [UNK])
        tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True)
    else:
        tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    # Every word must be its own token, or the tiny model sees the same input for every text.
    unknown = [w for w in WORDS if tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)) == [tokenizer.unk_token_id]]
    assert not unknown, f"the tiny tokenizer does not know {unknown}"
    tokenizer.save_pretrained(path)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1})
    torch.manual_seed(seed)
    BertForSequenceClassification(config).eval().save_pretrained(path, safe_serialization=True)
    return path


def make_tiny_dataset(path: Path, *, rows: int = 240, seed: int = 0, sensitive: bool = True) -> Path:
    """A CSV of short labelled sentences (label names as text), with a sensitive column."""
    rng = random.Random(seed)
    lines = ["text,label,group"]
    for i in range(rows):
        label = rng.random() < 0.5
        words = [rng.choice(POSITIVE if label else NEGATIVE)] + rng.sample(FILLER, 4)
        rng.shuffle(words)
        group = "a" if i % 3 else "b"
        lines.append(f"{' '.join(words)} {i},{'positive' if label else 'negative'},{group}")
    path.write_text("\n".join(lines) + "\n")
    return path


def worker_memory(suite: dict[str, Any]) -> dict[str, Any]:
    """``suite`` with the default memory isolation: a fresh worker per variant."""
    suite["measure"] = {**suite["measure"], "memory": "worker"}
    return suite


def tiny_suite(model_dir: Path, data_csv: Path, **overrides: Any) -> dict[str, Any]:
    suite = {
        "name": "tiny",
        "models": [{"name": "tiny", "source": "path", "path": str(model_dir), "max_seq_len": 32}],
        "dataset": {"name": "toy", "source": "csv", "path": str(data_csv), "label_map": {"negative": 0, "positive": 1},
                    "sensitive_columns": ["group"], "max_samples": 80},
        "quantization": ["fp32", "dynamic_int8"],
        "backends": ["pytorch"],
        "devices": ["cpu"],
        "batch_sizes": [1, 4],
        "seq_lens": [16],
        "calibration": {"samples": 16},
        # Peak memory in process: a fresh worker per variant costs a tiny sweep about 4 s of waiting for the
        # worker's server to import torch and transformers. Tests about the worker ask for it (worker_memory);
        # the real-model sweeps (tests/integration) run the default, the worker.
        "measure": {"warmup_rounds": 2, "min_rounds": 3, "max_rounds": 5, "min_time_s": 0.0, "max_time_s": 1.0,
                    "eval_batch_size": 16, "efficiency": False, "memory": "inprocess"},
        "fairness": {"probe": False},
    }
    suite.update(overrides)
    return suite


def write_suite(path: Path, suite: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def make_tiny_llama(path: Path, *, seed: int = 0) -> Path:
    """A 2-layer Llama causal LM (random weights, tied embeddings) with a word-level tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate([*specials, *WORDS, "positive", "negative", "tweet", "sentiment",
                                                 "or", "(", ")", ":"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                     pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(path)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=True)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).eval().save_pretrained(path, safe_serialization=True)
    return path
