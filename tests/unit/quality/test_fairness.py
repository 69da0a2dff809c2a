"""quantbench.quality.fairness: identical to fairlearn on saved predictions; clear errors."""

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from quantbench.errors import QuantbenchError
from quantbench.quality.fairness import fairness_deltas, group_fairness, group_fairness_frame


@pytest.fixture
def predictions_csv(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    group = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    # a model that favours "south": more positive predictions there
    p = np.where(rng.random(n) < np.where(group == "south", 0.7, 0.4), 1, 0)
    path = tmp_path / "predictions.csv"
    pd.DataFrame({"label": y, "prediction": p, "region": group,
                  "age": rng.choice(["young", "old"], n)}).to_csv(path, index=False)
    return path


def test_identical_to_fairlearn_on_saved_predictions(predictions_csv):
    df = pd.read_csv(predictions_csv)
    got = group_fairness_frame(df, y_true="label", y_pred="prediction", sensitive="region")

    y, p, g = df["label"], df["prediction"], df["region"]
    frame = MetricFrame(metrics={"accuracy": lambda t, q: float(np.mean(t == q)), "selection_rate": selection_rate,
                                 "tpr": true_positive_rate, "fpr": false_positive_rate},
                        y_true=y, y_pred=p, sensitive_features=g)
    assert got["dp_difference"] == demographic_parity_difference(y, p, sensitive_features=g)
    assert got["eo_difference"] == equalized_odds_difference(y, p, sensitive_features=g)
    assert got["dp_difference"] > 0.1  # the planted preference for "south" is visible
    for group in ("north", "south", "east"):
        for metric in ("accuracy", "selection_rate", "tpr", "fpr"):
            assert got["by_group"][group][metric] == pytest.approx(frame.by_group.loc[group, metric], abs=1e-15)
        assert got["by_group"][group]["count"] == int((g == group).sum())
    assert got["worst_group_accuracy"] == pytest.approx(frame.by_group["accuracy"].min(), abs=1e-15)
    assert got["worst_group"] == frame.by_group["accuracy"].idxmin()
    assert got["group_sizes"] == {k: int(v) for k, v in g.value_counts().items()}
    assert got["n_groups"] == 3
    json.loads(json.dumps(got))  # plain JSON types only


def test_several_attributes(predictions_csv):
    df = pd.read_csv(predictions_csv)
    got = group_fairness(df["label"], df["prediction"], {"region": df["region"], "age": df["age"]})
    assert set(got) == {"region", "age"}
    assert got["age"]["dp_difference"] == demographic_parity_difference(
        df["label"], df["prediction"], sensitive_features=df["age"])
    assert got["region"] == group_fairness(df["label"], df["prediction"], df["region"])


def test_multiclass_rates_are_one_vs_rest():
    y = [0, 1, 2, 2, 0, 1, 2, 2]
    p = [0, 2, 2, 1, 0, 1, 2, 0]
    g = ["a", "a", "a", "a", "b", "b", "b", "b"]
    got = group_fairness(y, p, g, positive_label=2)
    assert got["by_group"]["a"]["accuracy"] == 0.5  # on the class ids as given
    assert got["by_group"]["a"]["selection_rate"] == 0.5  # share predicted as class 2
    assert got["by_group"]["b"]["tpr"] == 0.5


def test_single_group_is_a_clear_error():
    with pytest.raises(QuantbenchError, match=r"sensitive attribute 'region' has a single group \('north'\)"):
        group_fairness([0, 1, 1], [0, 1, 0], ["north"] * 3, name="region")


def test_missing_column_length_and_nan_are_clear_errors(predictions_csv):
    df = pd.read_csv(predictions_csv)
    with pytest.raises(QuantbenchError, match=r"column 'gender' \(sensitive\) is not in the table"):
        group_fairness_frame(df, y_true="label", y_pred="prediction", sensitive="gender")
    with pytest.raises(QuantbenchError, match="sensitive attribute 'region' has 299 items but y_true has 300"):
        group_fairness(df["label"], df["prediction"], df["region"][:-1])
    df.loc[5, "region"] = np.nan
    with pytest.raises(QuantbenchError, match="'region' has 1 missing value.*row 5"):
        group_fairness(df["label"], df["prediction"], df["region"])


def test_fairness_deltas():
    fp32 = group_fairness([1, 0, 1, 0], [1, 0, 1, 0], ["a", "a", "b", "b"])
    current = group_fairness([1, 0, 1, 0], [1, 0, 0, 0], ["a", "a", "b", "b"])
    deltas = fairness_deltas(current, fp32)
    assert deltas["accuracy_by_group"] == {"a": 0.0, "b": -0.5}
    assert deltas["worst_group_accuracy"] == -0.5
    assert deltas["dp_difference"] == 0.5
    assert deltas["eo_difference"] == 1.0
    other = group_fairness([1, 0, 1, 0], [1, 0, 0, 0], ["a", "a", "c", "c"])
    with pytest.raises(QuantbenchError, match="groups differ"):
        fairness_deltas(other, fp32)
