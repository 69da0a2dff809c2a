"""Policy loading and validation: defaults, suite files with `gates:`, errors that name the key."""

from __future__ import annotations


import pytest

from quantbench.errors import QuantbenchError
from quantbench.gate.policy import ABSOLUTE, DEFAULT_RULES, RELATIVE, Policy, load_policy
from tests.conftest import REPO


def rule(policy: Policy, metric: str, **cell):
    params = {"model": "minilm", "quant": "fp32", "backend": "pytorch", "device": "cpu",
              "batch_size": 8, "seq_len": 64, **cell}
    return policy.rule_for(metric=metric, test="test_latency", cell_id="x", params=params)


def test_defaults_cover_the_documented_metrics():
    policy = load_policy(None)
    expected = {"latency_p50_ms": (0.10, RELATIVE), "latency_p95_ms": (0.15, RELATIVE),
                "throughput_samples_per_s": (0.10, RELATIVE), "peak_rss_mb": (0.10, RELATIVE),
                "disk_size_mb": (0.05, RELATIVE), "accuracy": (0.01, ABSOLUTE), "f1_macro": (0.01, ABSOLUTE),
                "agreement_with_fp32": (0.01, ABSOLUTE), "dp_difference": (0.02, ABSOLUTE),
                "eo_difference": (0.02, ABSOLUTE), "flip_rate": (0.02, ABSOLUTE)}
    for metric, (threshold, mode) in expected.items():
        r = rule(policy, metric)
        assert (r.threshold, r.mode) == (threshold, mode), metric
    assert rule(policy, "latency_p99_ms") is None  # too few rounds for a p99 to mean anything
    assert (policy.alpha, policy.min_rounds, policy.on_insufficient, policy.on_missing) == (0.01, 5, "warn", "fail")


def test_threshold_strings_and_kind_default_modes():
    policy = load_policy({"rules": [{"metric": "latency_p50_ms", "threshold": "20%"},
                                    {"metric": "accuracy", "threshold": "2pt"},
                                    {"metric": "peak_rss_mb", "threshold": 0.3},
                                    {"metric": "worst_group_accuracy", "threshold": 0.05}]})
    assert (rule(policy, "latency_p50_ms").threshold, rule(policy, "latency_p50_ms").mode) == (0.2, RELATIVE)
    assert rule(policy, "accuracy").threshold == pytest.approx(0.02) and rule(policy, "accuracy").mode == ABSOLUTE
    assert rule(policy, "peak_rss_mb").mode == RELATIVE
    assert rule(policy, "worst_group_accuracy").mode == ABSOLUTE


def test_defaults_false_starts_empty():
    policy = load_policy({"defaults": False, "rules": [{"metric": "accuracy", "threshold": "1pt"}]})
    assert rule(policy, "latency_p50_ms") is None and rule(policy, "accuracy") is not None


def test_where_matches_params_with_globs():
    policy = load_policy({"rules": [{"metric": "latency_p50_ms", "threshold": "50%",
                                     "where": {"quant": ["nf4", "*int8"], "batch_size": 8}}]})
    assert rule(policy, "latency_p50_ms", quant="nf4").threshold == 0.5
    assert rule(policy, "latency_p50_ms", quant="static_int8").threshold == 0.5
    assert rule(policy, "latency_p50_ms", quant="nf4", batch_size=32).threshold == 0.10
    assert rule(policy, "latency_p50_ms").threshold == 0.10


def test_suite_file_with_gates_key(tmp_path):
    suite = tmp_path / "ci.yaml"
    suite.write_text("name: ci\nmodels: [minilm]\ngates:\n  alpha: 0.05\n  min_rounds: 8\n"
                     "  rules:\n    - metric: disk_size_mb\n      threshold: 1%\n")
    policy = load_policy(suite)
    assert (policy.alpha, policy.min_rounds) == (0.05, 8)
    assert rule(policy, "disk_size_mb").threshold == 0.01
    assert policy.source == str(suite)


def test_example_policy_file_in_repo_is_valid():
    policy = load_policy(REPO / "suites" / "gates.yaml")
    assert len(policy.rules) > len(DEFAULT_RULES)


@pytest.mark.parametrize("text, needles", [
    ("rules:\n  - metric: latency_p50_ms\n    threshold: 10%\n    mode: relativ\n",
     ["rules[0].mode", "'relativ'", "relative, absolute"]),
    ("rules:\n  - metric: latncy\n    threshold: 10%\n", ["rules[0].metric", "'latncy'", "latency_p50_ms"]),
    ("rules:\n  - metric: accuracy\n    threshold: ten\n", ["rules[0].threshold", "'ten'", "'N%'"]),
    ("rules:\n  - metric: accuracy\n", ["rules[0].threshold", "missing"]),
    ("rules:\n  - metric: accuracy\n    threshold: 1pt\n    colour: red\n", ["rules[0]", "'colour'", "min_delta"]),
    ("rules:\n  - metric: accuracy\n    threshold: 1pt\n    where: {qaunt: nf4}\n",
     ["rules[0].where", "'qaunt'", "quant"]),
    ("gates:\n  alpha: 2\n", ["gates.alpha", "2"]),
    ("gates:\n  on_insufficient: maybe\n", ["gates.on_insufficient", "'maybe'", "warn, fail"]),
    ("gates:\n  min_rounds: 1.5\n", ["gates.min_rounds", "integer"]),
    ("gates:\n  drift_correction: sometimes\n", ["gates.drift_correction", "'sometimes'", "true, false"]),
    ("noise_floor: 0.3\n", ["noise_floor", "0.3", "true, false"]),
    ("name: ci\nmodels: [minilm]\n", ["no 'gates:' key", "'name'", "alpha"]),
    ("gates: [1, 2]\n", ["gates", "expected a mapping"]),
    ("", ["empty file"]),
    ("rules: [\n", ["not valid YAML"]),
    ("rules:\n  - metric: accuracy\n    threshold: 10%\n    mode: absolute\n", ["relative", "mode says absolute"]),
])
def test_validation_errors_name_file_key_and_allowed(tmp_path, text, needles):
    path = tmp_path / "gates.yaml"
    path.write_text(text)
    with pytest.raises(QuantbenchError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for needle in needles:
        assert needle in message, message


def test_missing_policy_file_names_it(tmp_path):
    with pytest.raises(QuantbenchError, match="nope.yaml"):
        load_policy(tmp_path / "nope.yaml")


def test_loaded_suite_block_uses_where_label_and_empty_means_defaults():
    assert load_policy({}).rules == DEFAULT_RULES
    with pytest.raises(QuantbenchError, match=r"^suites/ci.yaml: gates: rules\[0\].metric"):
        load_policy({"rules": [{"metric": "nope", "threshold": 0.1}]}, where="suites/ci.yaml: gates")


def test_yaml_examples_in_the_docs_are_valid():
    import re

    import yaml

    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "gating.md").read_text(), flags=re.S)
    policies = [b for b in blocks if b.startswith("alpha:")]
    workflows = [b for b in blocks if b.startswith("name:")]
    assert policies and workflows
    for block in policies:
        load_policy(yaml.safe_load(block), where="docs/gating.md")
    for block in workflows:
        steps = yaml.safe_load(block)["jobs"]["bench"]["steps"]
        assert any("quantbench gate" in str(step.get("run", "")) for step in steps)


def test_drift_and_floor_switches_default_on_and_can_be_turned_off():
    assert load_policy({}).drift_correction is True and load_policy({}).noise_floor is True
    off = load_policy({"drift_correction": False, "noise_floor": False})
    assert off.drift_correction is False and off.noise_floor is False
    assert off.describe()["noise_floor"] is False
