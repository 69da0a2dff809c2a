"""The shipped tweets_sentiment task: built once from the suite's test split, found by lm-eval offline."""

from __future__ import annotations

import json

import pytest

from quantbench.errors import QuantbenchError
from quantbench.lmeval.shipped import LABELS, task_folder
from quantbench.runner.context import RunContext
from quantbench.suite import parse_suite

SUITE = {"models": [{"name": "m", "task": "text-generation"}], "dataset": {"source": "embedded", "max_samples": 40},
         "calibration": {"samples": 16}}


@pytest.fixture
def splits(isolated_cache):
    return RunContext(parse_suite(SUITE, where="s.yaml")).splits


def test_the_folder_holds_the_test_split_and_a_yaml_that_names_it(splits):
    folder = task_folder(splits, dataset_source="embedded")
    docs = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
    assert [d["text"] for d in docs] == splits.test.texts and [d["label"] for d in docs] == splits.test.labels.tolist()
    assert {d["label_name"] for d in docs} <= set(LABELS)
    train = [json.loads(line)["text"] for line in (folder / "train.jsonl").read_text().splitlines()]
    assert not set(train) & set(splits.test.texts)  # few-shot examples never come from the test split
    yaml_text = (folder / "tweets_sentiment.yaml").read_text()
    assert "dataset_path: json" in yaml_text and str(folder / "test.jsonl") in yaml_text
    assert task_folder(splits, dataset_source="embedded") == folder  # built once, then found in the cache


def test_lm_eval_loads_it_offline_with_the_split_as_documents(splits):
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_folder(splits, dataset_source="embedded")), include_defaults=False)
    task = manager.load(["tweets_sentiment"])["tasks"]["tweets_sentiment"]
    docs = list(task.test_docs())
    assert len(docs) == len(splits.test) and docs[0]["text"] == splits.test.texts[0]
    assert task.doc_to_choice(docs[0]) == list(LABELS) and task.doc_to_target(docs[0]) == splits.test.labels[0]
    assert task.doc_to_text(docs[0]) == (f"Tweet: {splits.test.texts[0]}\nIs the author of this tweet angry "
                                         "(negative) or happy (positive)? Answer: The tweet is")
    # acc, and mcc: a corpus-level figure that a constant answer cannot raise above 0.
    assert [m["metric"] for m in task.config.metric_list] == ["acc", "mcc"]


def test_another_dataset_is_refused_in_one_line(splits):
    with pytest.raises(QuantbenchError, match=r"^the shipped lm-eval task tweets_sentiment reads the embedded tweets "
                                              r"\(dataset.source: embedded, labels \['negative', 'positive'\]\); this "
                                              r"suite's dataset is 'csv'"):
        task_folder(splits, dataset_source="csv")
