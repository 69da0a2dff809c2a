"""The suite's ``serving`` section: parsed, validated in one line per mistake, and expanded into cells."""

from __future__ import annotations

import pytest

from quantbench import cells
from quantbench.errors import SuiteError
from quantbench.suite import load_suite, parse_suite
from quantbench.suite.llama_server import LlamaServerSettings
from quantbench.suite.serving import early_stopping_queries

CLASSIFIER = {"models": [{"name": "m"}], "quantization": ["fp32", "dynamic_int8"], "batch_sizes": [1, 8]}
BOTH = {"models": [{"name": "m"}, {"name": "lm", "task": "text-generation"}], "batch_sizes": [1, 4]}


def parse(data):
    return parse_suite(data, where="s.yaml")


def test_a_serving_section_is_read_with_its_defaults():
    suite = parse({**CLASSIFIER, "serving": {"slo": {"latency_p99_ms": 80}}})
    serving = suite.serving
    assert serving.scenarios == ("single_stream", "offline", "server")  # all three unless the suite narrows them
    assert serving.bounds("text-classification") == {"latency": 80.0} and serving.percentile("text-classification") == 0.99
    assert serving.precision == 0.05 and serving.max_points == 8
    assert serving.queries("text-classification") == 459 == early_stopping_queries(0.99)
    assert suite.summary()["serving"]["slo"] == {"latency_p99_ms": 80.0}


def test_generation_slos_are_per_task():
    suite = parse({**BOTH, "serving": {"scenarios": ["server", "offline"],
                                       "slo": {"latency_p99_ms": 100, "ttft_p90_ms": 500, "tpot_p90_ms": 50}}})
    s = suite.serving
    assert s.scenarios == ("offline", "server")  # run order: the offline bound first
    assert s.bounds("text-generation") == {"ttft": 500.0, "tpot": 50.0} and s.percentile("text-generation") == 0.9
    assert s.queries("text-generation") == 44 and s.queries("text-classification") == 459


@pytest.mark.parametrize(("serving", "message"), [
    ({"scenarios": ["burst"]}, "s.yaml: serving.scenarios[0]: 'burst' is not allowed; allowed values: "
                               "single_stream, offline, server"),
    ({"scenarios": ["server"]}, "s.yaml: serving.slo: is required with the server scenario: a capacity is the "
                                "highest rate meeting it"),
    ({"slo": {"latency_p98_ms": 50}}, "s.yaml: serving.slo.latency_p98_ms: unknown SLO; use latency_pNN_ms "
                                       "(classification), ttft_pNN_ms and tpot_pNN_ms (generation), NN one of 50, 90, 95, 99"),
    ({"slo": {"latency_p99_ms": -5}}, "s.yaml: serving.slo.latency_p99_ms: must be a positive number of "
                                       "milliseconds, got -5"),
    ({"slo": {"ttft_p90_ms": 5, "tpot_p90_ms": 1}}, "s.yaml: serving.slo.ttft_p90_ms: is a text-generation SLO, "
                                                     "and the suite has no text-generation model"),
    ({"slo": {"latency_p99_ms": 5}, "min_queries": 100},
     "s.yaml: serving.min_queries: 100 is below the 459 queries LoadGen's early stopping needs to call a p99 bound "
     "met; use at least 459 (or leave it out: that minimum is the default)"),
    ({"slo": {"latency_p99_ms": 5}, "min_duration_s": 5, "max_duration_s": 2},
     "s.yaml: serving.max_duration_s: 2 is below min_duration_s (5)"),
    ({"slo": {"latency_p99_ms": 5}, "precision": 0.7}, "s.yaml: serving.precision: must be below 0.5 (a share of "
                                                       "the capacity, e.g. 0.05), got 0.7"),
    ({"slo": {"latency_p99_ms": 5}, "burst": 1}, "s.yaml: serving.burst: unknown key; allowed keys: scenarios, slo, "
                                                 "min_duration_s, max_duration_s, min_queries, samples, precision, "
                                                 "max_points, max_queue_delay_ms, compare_tokens, knee_points, "
                                                 "replicates, seed, llama_server"),
    ({"slo": {"latency_p99_ms": 5}, "replicates": 0}, "s.yaml: serving.replicates: must be a positive integer, got 0"),
])
def test_serving_mistakes_are_one_line_errors(serving, message):
    with pytest.raises(SuiteError) as info:
        parse({**CLASSIFIER, "serving": serving})
    assert str(info.value) == message


def test_llama_server_keys_are_read_and_left_out_means_the_server_s_default():
    plain = parse({**BOTH, "serving": {"scenarios": ["offline"]}}).serving
    assert plain.llama_server == LlamaServerSettings() and "llama_server" not in plain.summary()
    suite = parse({**BOTH, "serving": {"scenarios": ["offline"], "llama_server": {
        "flash_attn": "on", "cache_prompt": False, "threads_batch": 1, "shared_prefix_tokens": 16}}})
    assert suite.serving.llama_server == LlamaServerSettings(flash_attn="on", cache_prompt=False, threads_batch=1,
                                                             shared_prefix_tokens=16)
    assert suite.summary()["serving"]["llama_server"] == {"flash_attn": "on", "cache_prompt": False,
                                                          "threads_batch": 1, "shared_prefix_tokens": 16}
    # YAML 1.1 reads a bare off as false: it means --flash-attn off.
    off = parse({**BOTH, "serving": {"scenarios": ["offline"], "llama_server": {"flash_attn": False}}})
    assert off.serving.llama_server.flash_attn == "off"


@pytest.mark.parametrize(("keys", "message"), [
    ({"flash_attn": "fast"}, "s.yaml: serving.llama_server.flash_attn: 'fast' is not allowed; allowed values: auto, "
                             "on, off"),
    ({"cache_prompt": "yes"}, "s.yaml: serving.llama_server.cache_prompt: expected bool, got 'yes'"),
    ({"threads_batch": 0}, "s.yaml: serving.llama_server.threads_batch: must be a positive integer (or left out: the "
                           "same as threads), got 0"),
    ({"shared_prefix_tokens": -4}, "s.yaml: serving.llama_server.shared_prefix_tokens: must be 0 or more tokens, "
                                   "got -4"),
    ({"cache_reuse": 256}, "s.yaml: serving.llama_server.cache_reuse: unknown key; allowed keys: flash_attn, "
                           "cache_prompt, threads_batch, shared_prefix_tokens"),
])
def test_llama_server_mistakes_are_one_line_errors(keys, message):
    with pytest.raises(SuiteError) as info:
        parse({**BOTH, "serving": {"scenarios": ["offline"], "llama_server": keys}})
    assert str(info.value) == message


def test_generation_slos_need_both_figures_and_one_percentile():
    with pytest.raises(SuiteError, match=r"^s.yaml: serving.slo.tpot_p90_ms: is required: a generation SLO bounds"):
        parse({**BOTH, "serving": {"slo": {"ttft_p90_ms": 500}}})
    with pytest.raises(SuiteError, match=r"share one percentile \(LoadGen has one per run\), got p90 and p99"):
        parse({**BOTH, "serving": {"slo": {"ttft_p90_ms": 500, "tpot_p99_ms": 50}}})


def test_recommend_by_capacity_needs_a_server_scenario():
    with pytest.raises(SuiteError, match="s.yaml: recommend_by: capacity needs a serving section with the server"):
        parse({**CLASSIFIER, "recommend_by": "capacity"})
    assert parse({**CLASSIFIER, "recommend_by": "capacity",
                  "serving": {"slo": {"latency_p99_ms": 5}}}).summary()["recommend_by"] == "capacity"


def test_serving_cells_are_one_per_variant_and_scenario():
    suite = parse({**CLASSIFIER, "serving": {"slo": {"latency_p99_ms": 5}},
                   "exclude": [{"quant": "dynamic_int8", "scenario": "single_stream"}]})
    planned = cells.expand(suite, serving=True)
    ids = [p.cell.id for p in planned]
    assert ids == ["m-tweets-fp32-pytorch-cpu-single_stream", "m-tweets-fp32-pytorch-cpu-offline",
                   "m-tweets-fp32-pytorch-cpu-server", "m-tweets-dynamic_int8-pytorch-cpu-offline",
                   "m-tweets-dynamic_int8-pytorch-cpu-server"]
    assert planned[2].cell.params() == {"model": "m", "quant": "fp32", "backend": "pytorch", "device": "cpu",
                                        "seq_len": 128, "scenario": "server"}
    assert [p.cell.id for p in cells.expand(suite, {"scenario": ("server",)}, serving=True)] == [ids[2], ids[4]]
    # Without a serving section there are no serving cells, and other cells keep their ids and params.
    assert cells.expand(parse(CLASSIFIER), serving=True) == []
    assert "scenario" not in cells.expand(suite)[0].cell.params()


def test_a_scenario_filter_the_suite_lacks_is_a_usage_error():
    suite = parse({**CLASSIFIER, "serving": {"scenarios": ["offline"]}})
    with pytest.raises(Exception, match=r"--scenario server: not in suite"):
        cells.expand(suite, {"scenario": ("server",)}, serving=True)


def test_the_serving_suite_validates():
    suite = load_suite("serving")
    assert suite.recommend_by == "capacity" and "server" in suite.serving.scenarios
    assert {m.task for m in suite.models} == {"text-classification", "text-generation"}
