"""The result contract for uncertainty and batch sensitivity: intervals, standard errors, figures by pattern."""

from __future__ import annotations

import pytest

from quantbench.results import (
    METRICS,
    batch_size_of,
    metric_intervals,
    metric_spec,
    metric_std_errors,
    metric_values,
    parse_run,
)
from tests.run_factory import make_run


def test_new_quality_figures_are_in_the_table_with_their_direction():
    expected = {"balanced_accuracy": ("higher", "accuracy"), "majority_rate": ("higher", "info"),
                "kl_divergence_median": ("lower", "accuracy"), "kl_divergence_max": ("lower", "accuracy"),
                "delta_p_mean": ("higher", "accuracy"), "delta_p_rms": ("lower", "accuracy"),
                "ppl_ratio": ("lower", "accuracy"), "ln_ppl_ratio": ("lower", "accuracy")}
    for name, (better, kind) in expected.items():
        assert (METRICS[name].better, METRICS[name].kind) == (better, kind), name


@pytest.mark.parametrize("name, unit, better, kind, n", [
    ("perplexity_at_bs8", "", "lower", "accuracy", 8),
    ("perplexity_at_bs16_delta_pct", "%", "lower", "accuracy", 16),
    ("accuracy_at_bs32", "", "higher", "accuracy", 32),
    ("accuracy_at_bs64_delta_pts", "pts", "higher", "accuracy", 64),
    ("predictions_changed_at_bs8", "", "lower", "info", 8),
])
def test_batch_sensitivity_figures_are_known_by_pattern(name, unit, better, kind, n):
    spec = metric_spec(name)
    assert (spec.unit, spec.better, spec.kind) == (unit, better, kind)
    assert str(n) in spec.description and batch_size_of(name) == n


@pytest.mark.parametrize("name", ["perplexity_at_bsx", "perplexity_at_bs8_delta", "accuracy_at_bs8\n",
                                  "latency_at_bs8", "perplexity_at_bs8_ci95"])
def test_names_that_only_look_like_batch_figures_are_not_metrics(name):
    assert metric_spec(name) is None and batch_size_of(name) is None


def test_metric_values_pick_up_batch_figures_and_ignore_flags_and_intervals():
    extra = {"perplexity": 285.8, "perplexity_ci95": [276.9, 294.7], "perplexity_se": 9.1,
             "perplexity_at_bs8": 300.0, "perplexity_at_bs8_delta_pct": 4.97,
             "predictions_changed_at_bs8": 9, "quality_scoring": "each text alone (batch 1)",
             "zero_shot_at_floor": True, "batch_sensitivity": {"bs8": {"perplexity": 300.0}},
             "accuracy_at_bs8": True}  # a bool is no figure
    assert metric_values(extra) == {"perplexity": 285.8, "perplexity_at_bs8": 300.0,
                                    "perplexity_at_bs8_delta_pct": 4.97, "predictions_changed_at_bs8": 9.0}


def test_intervals_keep_well_formed_pairs_of_known_metrics_only():
    extra = {"accuracy_ci95": [0.862, 0.903], "accuracy_delta_pts_ci95": (-2.9, 0.3),
             "flip_rate_ci95": [0.05, 0.01],  # reversed
             "f1_macro_ci95": [0.8, float("nan")], "kl_divergence_ci95": [0.01], "perplexity_ci95": "276-294",
             "dp_difference_ci95": [True, 1.0], "made_up_ci95": [0, 1], "accuracy_at_bs8_ci95": [0.85, 0.9]}
    assert metric_intervals(extra) == {"accuracy": (0.862, 0.903), "accuracy_delta_pts": (-2.9, 0.3),
                                       "accuracy_at_bs8": (0.85, 0.9)}


def test_standard_errors_prefer_the_stated_one_and_else_come_from_the_interval():
    extra = {"perplexity_ci95": [270.0, 300.0], "perplexity_se": 9.1,  # stated: wins
             "accuracy_ci95": [0.80, 0.88],  # width 0.08 -> se 0.08 / 3.92
             "kl_divergence_se": -1.0}  # malformed: ignored
    assert metric_std_errors(extra) == pytest.approx({"perplexity": 9.1, "accuracy": 0.08 / 3.92})


def test_old_runs_without_intervals_load_with_none():
    run = parse_run(make_run(batch_sizes=(1,)))
    assert run.records and all(r.intervals == {} and r.std_errors == {} for r in run.records)
    data = make_run(batch_sizes=(1,))
    acc = next(b for b in data["benchmarks"] if b["name"].startswith("test_accuracy"))
    acc["extra_info"]["accuracy_ci95"] = [0.88, 0.92]
    record = next(r for r in parse_run(data).records if r.test == "test_accuracy")
    assert record.intervals == {"accuracy": (0.88, 0.92)}
