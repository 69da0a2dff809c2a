"""The lm-eval task quantbench ships, built once per data split into a cached task folder.

lm-eval tasks load their documents from the hub; this machine has none. The shipped task,
``tweets_sentiment`` (``task_files/tweets_sentiment.yaml``), reads the embedded tweets instead:
the test split every quality figure uses (``quantbench.data``), and a slice of the train split
for few-shot examples. Both are written once as JSON Lines into a cache entry with a copy of the
YAML that names them (``dataset_path: json``, ``dataset_kwargs: {data_files: ...}``); that folder
is what ``--include_path`` points lm-eval at. The entry is keyed by the YAML, the splits' content
and the cache location, so a new split or an edited YAML makes a new folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from quantbench import cache
from quantbench.errors import QuantbenchError

TASK_FILES = Path(__file__).parent / "task_files"
#: The task names quantbench ships (each a YAML in task_files/).
SHIPPED_TASKS = ("tweets_sentiment",)
LABELS = ("negative", "positive")  # the YAML's doc_to_choice, in label-id order
FEWSHOT_DOCS = 256  # train-split documents written for few-shot examples
CACHE_KIND = "lm-eval-tasks"
FORMAT = 2  # of the files written here: part of the cache key


def _rows(split, count: int | None = None) -> list[dict]:
    texts, labels = split.texts[:count], split.labels[:count].tolist()
    return [{"text": text, "label": int(label), "label_name": LABELS[int(label)]} for text, label in zip(texts, labels)]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    # ASCII escapes: a tweet may hold U+2028, which some line readers take for a line break.
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def task_folder(splits, *, dataset_source: str) -> Path:
    """The include path holding the shipped tasks for ``splits`` (built on first use, then cached).

    ``splits`` must be the embedded tweets (``dataset.source: embedded``): the task's choices are
    their label names.
    """
    if dataset_source != "embedded" or tuple(splits.label_names) != LABELS:
        raise QuantbenchError(f"the shipped lm-eval task {SHIPPED_TASKS[0]} reads the embedded tweets "
                              f"(dataset.source: embedded, labels {list(LABELS)}); this suite's dataset is "
                              f"{dataset_source!r} with labels {list(splits.label_names)}")
    templates = {name: (TASK_FILES / f"{name}.yaml").read_text(encoding="utf-8") for name in SHIPPED_TASKS}
    train = _rows(splits.train, FEWSHOT_DOCS)
    key = cache.content_key(FORMAT, templates, splits.test.fingerprint(), train, str(cache.cache_root()))
    entry = cache.entry_path(CACHE_KIND, f"{splits.name}-{key}")
    if cache.is_complete(entry):
        return entry
    meta = {"tasks": list(SHIPPED_TASKS), "test_fingerprint": splits.test.fingerprint(),
            "test_docs": len(splits.test), "train_docs": len(train)}
    with cache.building(entry, meta) as scratch:
        _write_jsonl(scratch / "test.jsonl", _rows(splits.test))
        _write_jsonl(scratch / "train.jsonl", train)
        # The copy names the files where the entry will live (the scratch folder is renamed to it).
        files = {"data_files": {"test": str(entry / "test.jsonl"), "train": str(entry / "train.jsonl")}}
        for name, text in templates.items():
            added = yaml.safe_dump({"dataset_kwargs": files}, sort_keys=False)
            (scratch / f"{name}.yaml").write_text(f"{text.rstrip()}\n# added by quantbench:\n{added}",
                                                  encoding="utf-8")
    return entry
