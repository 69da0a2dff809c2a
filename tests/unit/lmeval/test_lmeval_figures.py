"""lm-eval's results JSON as record figures: names, stderr, paired deltas, directions, budget keys."""

from __future__ import annotations

import math

import pytest

from quantbench.lmeval import figures
from quantbench.quality.uncertainty import Z95
from quantbench.results import lm_eval_budget, lm_eval_name, metric_spec, metric_std_errors, metric_values

RESULTS = {"results": {
    "tweets_sentiment": {"name": "tweets_sentiment", "alias": "tweets_sentiment", "sample_len": 4,
                         "acc,none": 0.75, "acc_stderr,none": 0.25},
    "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.5, "exact_match_stderr,strict-match": 0.1,
              "exact_match,flexible-extract": 0.6, "exact_match_stderr,flexible-extract": "N/A"},
    "wikitext": {"word_perplexity,none": 31.5, "word_perplexity_stderr,none": "N/A",
                 "bits_per_byte,none": 0.9, "bits_per_byte_stderr,none": "N/A"},
}, "samples": {"tweets_sentiment": []}}


def test_every_figure_keeps_lm_evals_value_and_stderr_unrounded():
    out = figures.result_figures(RESULTS)
    assert out == {"lm_eval.tweets_sentiment.acc": 0.75, "lm_eval.tweets_sentiment.acc_se": 0.25,
                   "lm_eval.gsm8k.exact_match.strict-match": 0.5, "lm_eval.gsm8k.exact_match.strict-match_se": 0.1,
                   "lm_eval.gsm8k.exact_match.flexible-extract": 0.6,  # "N/A" stderr: no _se, never a made-up one
                   "lm_eval.wikitext.word_perplexity": 31.5, "lm_eval.wikitext.bits_per_byte": 0.9}
    # The record's reader takes them as figures, with lm-eval's stderr as their standard error.
    assert metric_values(out) == {k: v for k, v in out.items() if not k.endswith("_se")}
    assert metric_std_errors(out) == {"lm_eval.tweets_sentiment.acc": 0.25, "lm_eval.gsm8k.exact_match.strict-match": 0.1}
    assert "samples" not in figures.stripped(RESULTS) and "results" in figures.stripped(RESULTS)


def test_a_figure_lm_eval_judges_the_other_way_stays_out_of_the_figures():
    results = {"results": {"t": {"acc,none": 0.5, "my_error,none": 0.2}},
               "higher_is_better": {"t": {"acc": True, "my_error": False}}}
    out = figures.result_figures(results)
    assert out["lm_eval.t.acc"] == 0.5 and "lm_eval.t.my_error" not in out
    assert "lower is better" in out["lm_eval_not_figures"]["lm_eval.t.my_error"]


def test_names_directions_and_kinds():
    assert lm_eval_name("t", "acc") == "lm_eval.t.acc"
    assert lm_eval_name("t", "exact_match", "strict-match") == "lm_eval.t.exact_match.strict-match"
    assert metric_spec("lm_eval.t.acc").better == "higher"
    assert metric_spec("lm_eval.t.acc").kind == "accuracy"
    assert metric_spec("lm_eval.wikitext.word_perplexity").better == "lower"
    assert metric_spec("lm_eval.t.acc_delta").better == "higher"
    assert "fp32" in metric_spec("lm_eval.t.exact_match.strict-match_delta").description
    for not_a_figure in ("lm_eval.t.acc_se", "lm_eval.t.acc_ci95", "lm_eval.t", "lm_eval_t_acc"):
        assert metric_spec(not_a_figure) is None, not_a_figure


def test_directions_agree_with_lm_evals_own_registry():
    pytest.importorskip("lm_eval")
    import lm_eval.api.metrics  # noqa: F401 - registers lm-eval's metrics
    from lm_eval.api.registry import higher_is_better_registry

    checked = 0
    for name in list(higher_is_better_registry.keys()):
        higher = higher_is_better_registry.get(name)
        if isinstance(higher, bool):
            assert metric_spec(f"lm_eval.task.{name}").better == ("higher" if higher else "lower"), name
            checked += 1
    assert checked >= 10


def test_paired_deltas_are_the_mean_per_document_difference_with_its_standard_error():
    mine = {"lm_eval.t.acc": {0: 1.0, 1: 0.0, 2: 1.0, 3: 1.0}}
    ref = {"lm_eval.t.acc": {0: 1.0, 1: 1.0, 2: 1.0, 3: 0.0}}
    out = figures.paired_deltas(mine, ref)
    diffs = [0.0, -1.0, 0.0, 1.0]
    se = math.sqrt(sum((d - 0.0) ** 2 for d in diffs) / 3) / 2
    assert out["lm_eval.t.acc_delta"] == 0.0
    assert out["lm_eval.t.acc_delta_se"] == pytest.approx(se, abs=1e-6)
    assert out["lm_eval.t.acc_delta_ci95"] == pytest.approx([-Z95 * se, Z95 * se], abs=1e-6)
    # Against itself: zero, with a zero interval; on other documents: no delta at all.
    assert figures.paired_deltas(mine, mine)["lm_eval.t.acc_delta_ci95"] == [0.0, 0.0]
    assert figures.paired_deltas(mine, {"lm_eval.t.acc": {0: 1.0}}) == {}


def test_per_document_values_come_from_lm_evals_samples():
    samples = {"t": [{"doc_id": 0, "filter": "none", "metrics": ["acc"], "acc": 1.0},
                     {"doc_id": 1, "filter": "none", "metrics": ["acc"], "acc": 0.0}],
               "g": [{"doc_id": 0, "filter": "strict-match", "metrics": ["exact_match"], "exact_match": True}],
               # a corpus-level metric has no per-document number to pair
               "f": [{"doc_id": 0, "filter": "none", "metrics": ["f1"], "f1": (1, 0)}]}
    assert figures.per_document(samples) == {"lm_eval.t.acc": {0: 1.0, 1: 0.0},
                                             "lm_eval.g.exact_match.strict-match": {0: 1.0}}


def test_budget_keys_name_a_delta_and_its_side():
    assert lm_eval_budget("lm_eval.tweets_sentiment.acc_delta_min") == ("lm_eval.tweets_sentiment.acc_delta", False)
    assert lm_eval_budget("lm_eval.wikitext.word_perplexity_delta_max") == ("lm_eval.wikitext.word_perplexity_delta",
                                                                            True)
    for other in ("kl_divergence", "lm_eval.t.acc_min", "lm_eval.t.acc_delta", "top1_agreement_min"):
        assert lm_eval_budget(other) is None, other


def test_right_wrong_figures_get_mcnemars_exact_test_beside_their_delta():
    # 9 documents right here and wrong in fp32, 2 the reverse, 5 the same either way.
    mine = {"lm_eval.t.acc": {i: float(i < 9 or 11 <= i < 14) for i in range(16)}}
    ref = {"lm_eval.t.acc": {i: float(9 <= i < 14) for i in range(16)}}
    out = figures.paired_deltas(mine, ref)
    assert out["lm_eval.t.acc_delta_discordant"] == {"gained": 9, "lost": 2}
    assert out["lm_eval.t.acc_delta_mcnemar_p"] == pytest.approx(134 / 2048, rel=1e-12)
    assert out["lm_eval.t.acc_delta"] == pytest.approx(7 / 16, abs=1e-6)
    # Against itself: nothing discordant, p = 1.
    same = figures.paired_deltas(mine, mine)
    assert same["lm_eval.t.acc_delta_mcnemar_p"] == 1.0 and same["lm_eval.t.acc_delta_discordant"] == {"gained": 0,
                                                                                                        "lost": 0}
    # A partial-credit score (not 0/1) keeps its mean difference and gets no McNemar.
    partial = figures.paired_deltas({"lm_eval.t.f1_word": {0: 0.5, 1: 1.0}}, {"lm_eval.t.f1_word": {0: 1.0, 1: 1.0}})
    assert "lm_eval.t.f1_word_delta" in partial and "lm_eval.t.f1_word_delta_mcnemar_p" not in partial


def test_mcnemar_and_floor_keys_are_not_figures():
    extra = {"lm_eval.t.acc": 0.7, "lm_eval.t.acc_delta": 0.1, "lm_eval.t.acc_delta_mcnemar_p": 0.03,
             "lm_eval.t.acc_delta_discordant": {"gained": 3, "lost": 1}, "lm_eval.t.acc_floor": 0.687,
             "lm_eval.t.acc_at_floor": False}
    assert set(metric_values(extra)) == {"lm_eval.t.acc", "lm_eval.t.acc_delta"}
    for name in ("lm_eval.t.acc_delta_mcnemar_p", "lm_eval.t.acc_floor", "lm_eval.t.acc_at_floor"):
        assert metric_spec(name) is None, name
