"""quantbench.quality.metrics: our evaluate metrics agree with scikit-learn and work offline."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from quantbench.errors import QuantbenchError
from quantbench.quality.metrics import (
    F1,
    Accuracy,
    Precision,
    Recall,
    accuracy_delta_pts,
    agreement,
    classification_scores,
    keeps_99pct,
    load_metric,
    mean_abs_prob_diff,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # No test may reach the Hub: a missing metric must fail fast, not hang on the network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")


@pytest.fixture
def labels():
    rng = np.random.default_rng(7)
    return rng.integers(0, 3, 200), rng.integers(0, 3, 200)


def test_metric_classes_agree_with_sklearn(labels):
    y, p = labels
    assert Accuracy().compute(predictions=p, references=y) == {"accuracy": pytest.approx(skm.accuracy_score(y, p))}
    for cls, fn, key in [(F1, skm.f1_score, "f1"), (Precision, skm.precision_score, "precision"),
                         (Recall, skm.recall_score, "recall")]:
        for average in ("macro", "weighted"):
            got = cls().compute(predictions=p, references=y, average=average)[key]
            assert got == pytest.approx(fn(y, p, average=average, zero_division=0), abs=1e-12)
    # the default average is macro, and macro differs from weighted here
    assert F1().compute(predictions=p, references=y)["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_classification_scores_keys_and_values(labels):
    y, p = labels
    scores = classification_scores(y, p)
    assert set(scores) == {"accuracy", "f1_macro", "precision_macro", "recall_macro"}
    assert scores["accuracy"] == pytest.approx(np.mean(y == p))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert scores["recall_macro"] == pytest.approx(skm.recall_score(y, p, average="macro"))
    assert all(type(v) is float for v in scores.values())
    json.dumps(scores)
    assert classification_scores([1, 0, 1], [1, 0, 1], metrics=("accuracy",)) == {"accuracy": 1.0}


def test_classification_scores_rejects_bad_input():
    with pytest.raises(QuantbenchError, match="3 items but references has 2"):
        classification_scores([0, 1], [0, 1, 1])
    with pytest.raises(QuantbenchError, match="integers"):
        classification_scores(["a", "b"], ["a", "b"])


def test_builtin_names_do_not_touch_the_hub():
    assert isinstance(load_metric("accuracy"), Accuracy)
    assert isinstance(load_metric("F1"), F1)


def test_unknown_metric_is_one_clear_line():
    with pytest.raises(QuantbenchError) as info:
        load_metric("nonexistent-metric-xyz")
    message = str(info.value)
    assert "'nonexistent-metric-xyz'" in message
    assert "\n" not in message
    assert "accuracy, f1, precision, recall" in message


def test_local_metric_script(tmp_path):
    # A user's own metric script (evaluate's local-path route), written here, not copied.
    script = tmp_path / "exact_count" / "exact_count.py"
    script.parent.mkdir()
    script.write_text(
        "import datasets\n"
        "import evaluate\n"
        "class ExactCount(evaluate.Metric):\n"
        "    def _info(self):\n"
        "        return evaluate.MetricInfo(description='', citation='', inputs_description='',\n"
        "            features=datasets.Features({'predictions': datasets.Value('int32'),\n"
        "                                        'references': datasets.Value('int32')}))\n"
        "    def _compute(self, predictions, references):\n"
        "        return {'exact_count': sum(int(p == r) for p, r in zip(predictions, references))}\n"
    )
    scores = classification_scores([1, 0, 1, 1], [1, 1, 1, 1], metrics=("accuracy", str(script)))
    assert scores == {"accuracy": 0.75, "exact_count": 3.0}


def test_fp32_comparisons():
    assert agreement([1, 0, 2, 2], [1, 1, 2, 0]) == 0.5
    assert mean_abs_prob_diff([[0.9, 0.1], [0.2, 0.8]], [[0.8, 0.2], [0.2, 0.8]]) == pytest.approx(0.05)
    assert accuracy_delta_pts(0.91, 0.93) == pytest.approx(-2.0)
    assert keeps_99pct(0.891, 0.9)  # exactly 99 %: float rounding must not fail it
    assert keeps_99pct(0.95, 0.9)
    assert not keeps_99pct(0.8909, 0.9)
    with pytest.raises(QuantbenchError, match="shape"):
        mean_abs_prob_diff([[0.5, 0.5]], [0.5, 0.5])
    with pytest.raises(QuantbenchError, match="NaN"):
        mean_abs_prob_diff([float("nan")], [0.5])
    with pytest.raises(QuantbenchError, match="2 items but ref_pred has 3"):
        agreement([1, 0], [1, 0, 1])
