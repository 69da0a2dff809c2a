"""Suite validation: every error names the file, the key and what is allowed."""

from __future__ import annotations

import pytest

from quantbench.errors import SuiteError
from quantbench.suite import load_suite, parse_suite

MINIMAL = {"models": [{"name": "m"}]}


def parse(data):
    return parse_suite(data, where="s.yaml")


def test_defaults_fill_a_minimal_suite():
    suite = parse(MINIMAL)
    assert suite.quantization == ("fp32",) and suite.backends == ("pytorch",) and suite.devices == ("cpu",)
    assert suite.models[0].source == "embedded" and suite.models[0].trust_remote_code is False
    assert suite.measure.warmup_rounds >= 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "s.yaml: models: is required"),
        ({"models": []}, "s.yaml: models: must list at least one model"),
        ({"models": [{"name": "m", "source": "web"}]}, "s.yaml: models[0].source: 'web' is not allowed; allowed values: embedded, path, hub"),
        ({"models": [{"name": "m", "source": "path"}]}, "s.yaml: models[0].path: is required"),
        ({**MINIMAL, "devices": ["tpu"]}, "s.yaml: devices[0]: 'tpu' is not allowed; allowed values: cpu, cuda, mps"),
        ({**MINIMAL, "backends": ["tensorrt"]}, "s.yaml: backends[0]: 'tensorrt' is not allowed; allowed values: llamacpp, onnxruntime, openvino, pytorch"),
        ({**MINIMAL, "batch_sizes": [0]}, "s.yaml: batch_sizes[0]: must be a positive integer, got 0"),
        ({**MINIMAL, "batch_sizes": [8, 8]}, "s.yaml: batch_sizes: has duplicates: [8, 8]"),
        ({**MINIMAL, "measure": {"min_rounds": 10, "max_rounds": 5}}, "s.yaml: measure.max_rounds: 5 is below min_rounds (10)"),
        ({**MINIMAL, "measure": {"threads": True}}, "s.yaml: measure.threads: expected int, got True"),
        ({**MINIMAL, "measure": {"processes": 0}}, "s.yaml: measure.processes: must be a positive integer, got 0"),
        ({**MINIMAL, "measure": {"processes": 4, "max_processes": 3}}, "s.yaml: measure.max_processes: 3 is below processes (4)"),
        ({**MINIMAL, "measure": {"processes": 3, "end_to_end": True}}, "s.yaml: measure.processes: end_to_end timing runs in the harness's process only (its workers get tokenized inputs); set processes to 1, got 3"),
        ({**MINIMAL, "calibration": {"method": "kl"}}, "s.yaml: calibration.method: 'kl' is not allowed; allowed values: minmax, entropy, percentile"),
        ({**MINIMAL, "method_options": {"nf4": {"bits": 3}}}, "s.yaml: method_options.nf4.bits: unknown option; allowed: compute_dtype, double_quant"),
        ({**MINIMAL, "exclude": [{"colour": "red"}]}, "s.yaml: exclude[0].colour: unknown cell key; allowed: model, quant, backend, device, batch_size, seq_len, prompt_len, new_tokens, task, scenario"),
        ({**MINIMAL, "dataset": {"source": "csv"}}, "s.yaml: dataset.path: is required"),
        ({**MINIMAL, "dataset": {"label_map": {"pos": "one"}}}, "s.yaml: dataset.label_map.pos: must map to a class id (integer >= 0), got 'one'"),
        ([1, 2], "s.yaml: top level must be a mapping, got list"),
    ],
)
def test_errors_name_file_key_and_allowed_values(data, message):
    with pytest.raises(SuiteError) as info:
        parse(data)
    assert str(info.value) == message


def test_bundled_suites_all_validate():
    for name in ("default", "ci", "gpu", "full", "gate-study"):
        suite = load_suite(name)
        assert suite.name == name and suite.digest


def test_unknown_suite_name_lists_the_known_ones():
    with pytest.raises(SuiteError, match=r"unknown suite 'nope': not a file, and not one of .*default"):
        load_suite("nope")


def test_invalid_yaml_names_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n  - name: m\n")
    with pytest.raises(SuiteError, match=r"bad.yaml: not valid YAML at line \d+"):
        load_suite(str(bad))


def test_relative_paths_resolve_against_the_suite_file(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "data.csv").write_text("text,label\n")
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text("models: [{name: m, source: path, path: ckpt}]\n"
                          "dataset: {source: csv, path: data.csv}\n")
    suite = load_suite(str(suite_file))
    assert suite.models[0].location == str((tmp_path / "ckpt").resolve())
    assert suite.dataset.path == str((tmp_path / "data.csv").resolve())


def test_metrics_must_include_accuracy():
    with pytest.raises(SuiteError, match=r"s.yaml: metrics: must include 'accuracy'"):
        parse({**MINIMAL, "metrics": ["f1"]})
    assert parse({**MINIMAL, "metrics": ["accuracy", "matthews_correlation"]}).metrics == (
        "accuracy", "matthews_correlation")
