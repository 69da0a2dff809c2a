"""Datasets: disjoint fixed splits, and clear errors for a bad column or label."""

from __future__ import annotations

import pandas as pd
import pytest

from quantbench.data import load_splits, split_frame
from quantbench.errors import QuantbenchError
from quantbench.suite import parse_suite


def dataset_spec(path, **over):
    data = {"source": "csv", "path": str(path), "label_map": {"negative": 0, "positive": 1}, "max_samples": 40,
            "sensitive_columns": ["group"]}
    data.update(over)
    return parse_suite({"models": [{"name": "m"}], "dataset": data}, where="s.yaml").dataset


def test_csv_splits_are_disjoint_and_fixed(tiny_data):
    first = load_splits(dataset_spec(tiny_data), calibration_samples=16)
    again = load_splits(dataset_spec(tiny_data), calibration_samples=16)
    assert first.test.texts == again.test.texts and first.calibration.texts == again.calibration.texts
    parts = [set(first.train.texts), set(first.calibration.texts), set(first.test.texts)]
    assert len(first.test) == 40 and len(first.calibration) == 16 and len(first.train) == 240 - 56
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert first.label_names == ("negative", "positive")
    assert set(first.test.sensitive) == {"group"}


def test_train_split_does_not_move_when_the_test_size_changes(tiny_data):
    small = load_splits(dataset_spec(tiny_data, max_samples=20), calibration_samples=16)
    large = load_splits(dataset_spec(tiny_data, max_samples=60), calibration_samples=16)
    # Cut from the back: the fine-tuning data (and so the embedded model's cache key) is stable.
    assert large.train.texts == small.train.texts[-len(large.train):]


def test_duplicates_are_removed_before_splitting():
    frame = pd.DataFrame({"text": ["a", "a", "b", "c", "d", "e", "f"], "label": [0, 0, 1, 0, 1, 0, 1]})
    splits = split_frame(frame, name="t", seed=0, n_test=2, n_calibration=1, n_train=10, label_names=("n", "p"))
    every = splits.train.texts + splits.calibration.texts + splits.test.texts
    assert sorted(every) == ["a", "b", "c", "d", "e", "f"]


def test_missing_column_is_named(tiny_data):
    with pytest.raises(QuantbenchError, match=r"column\(s\) \['review'\] not found .* columns are \['text', 'label', 'group'\]"):
        load_splits(dataset_spec(tiny_data, text_column="review"), calibration_samples=16)


def test_label_outside_the_label_map_is_named(tiny_data):
    with pytest.raises(QuantbenchError, match=r"label value\(s\) \['positive'\] .* not in label_map \['negative', 'neutral'\]"):
        load_splits(dataset_spec(tiny_data, label_map={"negative": 0, "neutral": 1}), calibration_samples=16)


def test_too_small_dataset_says_what_to_lower(tiny_data):
    with pytest.raises(QuantbenchError, match="lower max_samples or calibration.samples"):
        split_frame(pd.DataFrame({"text": ["a", "b"], "label": [0, 1]}), name="t", seed=0, n_test=2,
                    n_calibration=1, n_train=1, label_names=("n", "p"))
