"""What the store keeps of a run, before any database: identity, key fields, one value per cell x metric."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from quantbench.errors import QuantbenchError
from quantbench.history import ingest
from quantbench.results import parse_run
from tests.run_factory import make_generation_run
from tests.unit.history.factory import machine_info, run_on


def _accuracy(run: dict) -> dict:
    return next(b for b in run["benchmarks"] if b["name"].startswith("test_accuracy"))


def test_each_cell_x_metric_becomes_one_value_with_its_direction_unit_and_samples():
    run = run_on(rounds=12)
    record = ingest.read_run(run)
    parsed = parse_run(run)
    assert len(record.values) == sum(len(r.metrics) for r in parsed.records)
    latency = next(v for v in record.values if v.metric == "latency_p50_ms" and "bs1" in v.cell)
    assert latency.direction == "lower" and latency.unit == "ms" and latency.samples == 12
    assert latency.test == "test_latency" and latency.cell.startswith("test_latency[minilm-tweets-")
    assert json.loads(latency.cell_key)[0] == "test_latency"  # BenchmarkRecord.key, as the gate keys cells
    throughput = next(v for v in record.values if v.metric == "throughput_samples_per_s")
    assert throughput.direction == "higher"
    assert latency.se is None and latency.ci_low is None  # no interval recorded: none invented


def test_intervals_and_standard_errors_are_kept():
    run = run_on()
    first = _accuracy(run)
    first["extra_info"]["accuracy_ci95"] = [0.85, 0.93]
    llm = make_generation_run(variants=(("fp32", "pytorch"),), batch_sizes=(1,))
    perplexity = next(b for b in llm["benchmarks"] if b["name"].startswith("test_perplexity"))
    perplexity["extra_info"]["perplexity_se"] = 3.25
    run["benchmarks"] += [perplexity]
    values = {(v.cell, v.metric): v for v in ingest.read_run(run).values}
    accuracy = values[(first["name"], "accuracy")]
    assert (accuracy.ci_low, accuracy.ci_high) == (0.85, 0.93)
    assert accuracy.se == pytest.approx((0.93 - 0.85) / (2 * 1.96))  # results.metric_std_errors
    assert values[(perplexity["name"], "perplexity")].se == 3.25
    assert values[(perplexity["name"], "perplexity")].direction == "lower"


def test_a_cell_listed_twice_keeps_its_last_record_like_the_gate():
    run = run_on()
    again = json.loads(json.dumps(_accuracy(run)))
    again["extra_info"]["accuracy"] = 0.5
    run["benchmarks"].append(again)
    values = [v for v in ingest.read_run(run).values if v.metric == "accuracy" and v.cell == again["name"]]
    assert [v.value for v in values] == [0.5]


def test_the_key_fields_are_read():
    run = run_on(commit="b" * 40, commit_time="2026-12-02T13:30:55+01:00", run_time="2026-12-06T06:41:05.398+00:00",
                 branch="feature/x")
    run["quantbench"]["suite"]["sha256"] = "7858241e4a9654e0"
    record = ingest.read_run(run)
    assert record.commit_id == "b" * 40 and record.branch == "feature/x" and record.dirty is False
    assert record.commit_time == dt.datetime(2026, 12, 2, 12, 30, 55)  # naive UTC
    assert record.run_time == dt.datetime(2026, 12, 6, 6, 41, 5, 398000)
    assert (record.suite, record.suite_digest) == ("default", "7858241e4a9654e0")
    assert record.quantbench_version == "0.1.0" and record.versions["torch"] == "2.13.0"
    assert record.cells == len(run["benchmarks"]) and record.failed_cells == 0
    assert record.fingerprint.id == ingest.from_machine_info(machine_info()).id


def test_the_identity_is_the_content_not_its_formatting():
    run = run_on()
    shuffled = json.loads(json.dumps(run, sort_keys=True))
    assert ingest.content_hash(run) == ingest.content_hash(shuffled)
    changed = json.loads(json.dumps(run))
    changed["benchmarks"][0]["stats"]["data"][0] *= 1.0001
    assert ingest.content_hash(changed) != ingest.content_hash(run)


def test_a_file_and_its_json_are_the_same_run(tmp_path):
    run = run_on()
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run, indent=4))
    from_file, from_dict = ingest.read_run(path), ingest.read_run(run)
    assert from_file.content_hash == from_dict.content_hash and from_file.source == str(path)
    assert ingest.decode_run(ingest.encode_run(run), ingest.RUN_FORMAT) == run


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON (line 1"),
    ("[1, 2]", "not a pytest-benchmark JSON file"),
    ('{"limits": {}}', "not a pytest-benchmark JSON file (no 'benchmarks' list)"),
    ('{"benchmarks": []}', "not a pytest-benchmark run (no 'machine_info' object)"),
])
def test_a_file_that_is_not_a_run_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(QuantbenchError) as caught:
        ingest.read_run(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unreadable_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(QuantbenchError, match=r"missing\.json: cannot read run file"):
        ingest.read_run(tmp_path / "missing.json")


@pytest.mark.parametrize(("text", "moment"), [
    ("2026-12-06T08:50:24.015481+00:00", dt.datetime(2026, 12, 6, 8, 50, 24, 15481)),
    ("2026-12-06T08:50:24Z", dt.datetime(2026, 12, 6, 8, 50, 24)),
    ("2026-12-06T09:50:24+01:00", dt.datetime(2026, 12, 6, 8, 50, 24)),
    ("2026-12-06T08:50:24", dt.datetime(2026, 12, 6, 8, 50, 24)),
    ("yesterday", None), ("", None), (None, None), (17, None),
])
def test_times_are_read_as_naive_utc(text, moment):
    assert ingest.parse_time(text) == moment
