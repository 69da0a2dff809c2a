"""Intervals on quality figures, the batching of scoring passes, and zero-shot calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_score, recall_score

from quantbench import cells
from quantbench.quality import batching, fairness, intervals, uncertainty
from quantbench.quality.zero_shot import calibrated_scores


def test_wilson_matches_the_textbook_values_and_stays_inside_zero_one():
    # 40 of 48 (the llm suite's zero-shot size): centre 0.8087, half-width 0.1044 by the formula.
    low, high = uncertainty.wilson(40, 48)
    assert low == pytest.approx(0.7042, abs=2e-4) and high == pytest.approx(0.9130, abs=2e-4)
    assert uncertainty.wilson(0, 10)[0] == 0.0 and uncertainty.wilson(10, 10)[1] == 1.0
    assert uncertainty.wilson(0, 0) is None


def test_mean_se_and_bootstrap_are_seeded_and_cover_the_mean():
    rng = np.random.default_rng(1)
    values = rng.normal(2.0, 1.0, 400)
    mean, se = uncertainty.mean_se(values)
    assert se == pytest.approx(values.std(ddof=1) / 20)
    ci = uncertainty.bootstrap_ci(lambda idx: float(values[idx].mean()), len(values))
    assert ci == uncertainty.bootstrap_ci(lambda idx: float(values[idx].mean()), len(values))  # same seed
    assert ci[0] < mean < ci[1]
    # The bootstrap interval of a mean is close to the normal one.
    assert ci[1] - ci[0] == pytest.approx(2 * uncertainty.Z95 * se, rel=0.15)


def test_numpy_macro_scores_equal_scikit_learn():
    rng = np.random.default_rng(2)
    y, p = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    p[p == 2] = 1  # a class never predicted: zero_division paths
    got = intervals.macro_scores(y, p, 3)
    assert got["f1_macro"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert got["precision_macro"] == pytest.approx(precision_score(y, p, average="macro", zero_division=0))
    assert got["recall_macro"] == pytest.approx(recall_score(y, p, average="macro", zero_division=0))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))


def test_numpy_gap_statistics_equal_fairlearn():
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    groups = rng.choice(["a", "b", "c"], 500)
    _, codes = np.unique(groups, return_inverse=True)
    dp, eo, worst = fairness._gap_statistics(y.astype(float), p.astype(float), (y == p).astype(float), codes, 3)
    assert dp == pytest.approx(demographic_parity_difference(y, p, sensitive_features=groups))
    assert eo == pytest.approx(equalized_odds_difference(y, p, sensitive_features=groups))
    assert worst == pytest.approx(min((y[groups == g] == p[groups == g]).mean() for g in "abc"))
    cis = fairness.gap_intervals(y, p, groups)
    assert cis["dp_difference_ci95"][0] <= dp <= cis["dp_difference_ci95"][1]


def test_classification_intervals_pair_the_variant_with_fp32():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 1000)
    ref = np.where(rng.random(1000) < 0.88, y, 1 - y)
    same = ref.copy()
    out = intervals.classification_intervals(y, same, ref, k=2, names=["negative", "positive"])
    assert out["accuracy_delta_pts_ci95"] == [0.0, 0.0]  # identical predictions: no difference at all
    assert out["agreement_with_fp32_ci95"][1] == 1.0 and out["predictions_changed_vs_fp32"] == 0
    flipped = ref.copy()
    flipped[:40] = 1 - flipped[:40]  # 40 changed predictions: a real, paired difference
    out = intervals.classification_intervals(y, flipped, ref, k=2, names=["negative", "positive"])
    delta = 100 * ((flipped == y).mean() - (ref == y).mean())
    assert out["accuracy_delta_pts_ci95"][0] <= delta <= out["accuracy_delta_pts_ci95"][1]
    assert out["predictions_changed_vs_fp32"] == 40
    assert out["majority_rate"] == pytest.approx(max(np.bincount(y)) / 1000)


def test_a_constant_zero_shot_answer_is_at_the_floor_and_a_real_one_is_not():
    y = np.array([0] * 80 + [1] * 20)
    constant = intervals.classification_intervals(y, np.zeros(100, int), y, k=2, names=["negative", "positive"])
    constant.update(accuracy=0.8, balanced_accuracy=0.5)
    assert intervals.at_floor(constant, 2)
    good = np.where(np.arange(100) % 10 == 0, 1 - y, y)  # 90 % right on both classes
    figures = intervals.classification_intervals(y, good, y, k=2, names=["negative", "positive"])
    figures["accuracy"] = float((good == y).mean())
    assert not intervals.at_floor(figures, 2)


def test_batches_cover_every_text_once_and_exact_length_buckets_never_pad():
    lengths = [5, 3, 5, 7, 3, 5, 5]
    for mode in batching.MODES:
        passes = batching.batches(lengths, mode, 2)
        assert sorted(np.concatenate(passes).tolist()) == list(range(7))
    assert all(len(p) == 1 for p in batching.batches(lengths, batching.ALONE, 8))
    assert all(len({lengths[i] for i in p}) == 1 for p in batching.batches(lengths, batching.EXACT_LENGTH, 2))
    assert [p.tolist() for p in batching.batches(lengths, batching.SERVED, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [p.tolist() for p in batching.batches(lengths, batching.LENGTH_SORTED, 3)] == [[1, 4, 0], [2, 5, 6], [3]]
    with pytest.raises(ValueError, match="unknown scoring mode 'sorted'"):
        batching.batches(lengths, "sorted", 2)


def test_batch_sensitive_methods_are_scored_alone_and_the_rest_in_buckets():
    def cell(quant, backend):
        return cells.Cell("m", "d", quant, backend, "cpu", 16, 128)

    assert batching.default_mode(cell("dynamic_int8", "pytorch")) == batching.ALONE
    assert batching.default_mode(cell("dynamic_int8", "onnxruntime")) == batching.ALONE
    assert batching.default_mode(cell("bnb_int8", "pytorch")) == batching.ALONE
    for quant, backend in [("fp32", "pytorch"), ("int8dq", "pytorch"), ("int8wo", "pytorch"), ("nf4", "pytorch"),
                           ("static_int8", "onnxruntime"), ("q8_0", "llamacpp")]:
        assert batching.default_mode(cell(quant, backend)) == batching.LENGTH_SORTED, (quant, backend)
    assert "one scale per tensor" in batching.describe(cell("dynamic_int8", "pytorch"), batching.ALONE, 16)


class _BiasedLM:
    """Always favours the label token 4 ("negative") by 2 nats, whatever the text: a biased prompt."""

    pad_token_id = 0
    vocab = 20

    def prepare(self, encoding):
        return encoding

    def logits_at(self, inputs, positions):
        import torch

        ids = torch.as_tensor(np.asarray(inputs["input_ids"]))
        out = torch.zeros(len(positions), self.vocab)
        out[:, 4] = 2.0
        # "great" (id 15) and "bad" (16) move the positive token (3); nothing beats the bias alone.
        out[:, 3] = 0.3
        out[(ids == 15).any(dim=1), 3] = 1.5
        out[(ids == 16).any(dim=1), 3] = 0.0
        return out


class _Tokenizer:
    bos_token_id = 1
    chat_template = None

    def __call__(self, text, add_special_tokens=False):
        if text in (" positive", " negative"):
            return {"input_ids": [3 if "pos" in text else 4]}
        words = {"great": 15, "bad": 16}
        return {"input_ids": [words.get(w, 10 + min(len(w), 4)) for w in text.split()]}


def test_contextual_calibration_divides_out_the_prompts_own_bias():
    texts = ["a great day", "a bad day", "so great", "bad bad"]
    scores, facts = calibrated_scores(_BiasedLM(), _Tokenizer(), texts, ["negative", "positive"], batch_size=2,
                                      max_len=64, mode="exact-length")
    # Uncalibrated, "negative" wins every text; calibrated, the texts with "great" are positive.
    assert facts["uncalibrated_predictions"] == {"negative": 4, "positive": 0}
    assert scores.argmax(axis=1).tolist() == [1, 0, 1, 0]
    # Content-free inputs hold neither word: p(negative) = 1 / (1 + e^(0.3 - 2)).
    assert facts["content_free_probs"]["negative"] == pytest.approx(1 / (1 + math.exp(0.3 - 2.0)), rel=1e-5)
    assert facts["content_free_inputs"] == ["N/A", "", "[MASK]"]


def test_batch_sensitivity_setting_picks_the_variants_scored_again_and_rejects_other_values():
    from quantbench.errors import SuiteError
    from quantbench.suite import parse_suite

    def cell(quant, backend="pytorch"):
        return cells.Cell("m", "d", quant, backend, "cpu", 16, 128)

    def suite(setting, quantization=("fp32", "dynamic_int8", "int8wo"), backends=("pytorch", "openvino")):
        return parse_suite({"models": [{"name": "m", "source": "path", "path": "."}],
                            "dataset": {"source": "csv", "path": "x.csv"}, "quantization": list(quantization),
                            "backends": list(backends), "quality": {"batch_sensitivity": setting}}, where="s.yaml")

    sensitive = suite("sensitive")
    assert batching.measures_sensitivity(cell("dynamic_int8"), sensitive)
    assert batching.measures_sensitivity(cell("fp32"), sensitive)  # the control beside dynamic_int8
    assert not batching.measures_sensitivity(cell("int8wo", "openvino"), sensitive)
    # No batch-sensitive method runs on OpenVINO here, so its fp32 has nothing to be the control of.
    assert not batching.measures_sensitivity(cell("fp32", "openvino"), sensitive)
    assert not batching.measures_sensitivity(cell("fp32"), suite("sensitive", quantization=("fp32", "int8wo")))
    assert batching.measures_sensitivity(cell("int8wo", "openvino"), suite("all"))
    assert not batching.measures_sensitivity(cell("dynamic_int8"), suite("off"))
    base = {"models": [{"name": "m", "source": "path", "path": "."}], "dataset": {"source": "csv", "path": "x.csv"}}
    assert parse_suite(base, where="s.yaml").quality.batch_sensitivity == "sensitive"
    assert parse_suite({**base, "quality": {"batch_sensitivity": False}}, where="s.yaml").quality.batch_sensitivity == "off"
    with pytest.raises(SuiteError, match="quality.batch_sensitivity: 'some' is not one of: sensitive, all, off"):
        parse_suite({**base, "quality": {"batch_sensitivity": "some"}}, where="s.yaml")
