"""Efficiency: FLOP counts checked by hand, shares of the peaks, cost, and the cached limits."""

from __future__ import annotations

import json

import pytest

from quantbench.efficiency import EfficiencyError, cell_efficiency, cost_figures, flops, limits

BERT = {"model_type": "bert", "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 8, "vocab_size": 30, "id2label": {"0": "negative", "1": "positive"}}
LLAMA = {"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 16, "vocab_size": 10, "hidden_act": "silu",
         "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}
LIMITS = {"limits": {"matmul_fp32": {"peak": 100.0}, "matmul_int8_ort": {"peak": 400.0},
                     "bandwidth_copy": {"peak": 10.0}, "bandwidth_triad": {"peak": 12.0}}}


def test_encoder_count_matches_a_hand_count():
    shape = flops.shape_of(BERT, classifier=True)
    # q, k, v, o: 4 x 4·4 = 64; MLP up and down: 2 x 4·8 = 64 -> 128 weights per token.
    assert shape.body_params == 128
    # 2 x 128 x 3 tokens + attention 2·2·1·3·3·4 + pooler 2·16 + classifier 2·4·2.
    assert flops.encoder_flops(shape, batch=1, seq=3) == 768 + 144 + 32 + 16


def test_decoder_count_matches_a_hand_count_with_gqa_and_a_gated_mlp():
    shape = flops.shape_of(LLAMA, classifier=False)
    # q, o: 2 x 8·8; k, v: 2 x 8·4 (2 KV heads of 2); gate, up, down: 3 x 8·16 -> 576 per layer.
    assert shape.layer_params == 576 and shape.body_params == 1152 and shape.labels == 0
    # Prefill of 4 tokens: 2·1152·4 + attention 2·2·2·4·4·8 + lm_head for the last position 2·8·10.
    assert flops.prefill_flops(shape, batch=1, prompt=4) == 9216 + 1024 + 160
    # A decode step at context 5: 2·1152 + attention 2·2·2·5·8 + lm_head 2·8·10.
    assert flops.decode_step_flops(shape, batch=1, context=5) == 2304 + 320 + 160
    prefill, decode = flops.generate_flops(shape, batch=1, prompt=4, new_tokens=3)
    assert decode == flops.decode_step_flops(shape, batch=1, context=5) + flops.decode_step_flops(
        shape, batch=1, context=6)
    # KV cache: keys and values, 2 layers, 4 wide, 5 tokens, fp32.
    assert flops.kv_cache_bytes_read(shape, batch=1, context=5, bytes_per_element=4) == 2 * 2 * 5 * 4 * 4


def _classification(latency_ms: float, quant: str = "fp32", backend: str = "pytorch") -> dict:
    return cell_efficiency(config=BERT, task="text-classification",
                           params={"quant": quant, "backend": backend, "batch_size": 1, "seq_len": 3},
                           extra_info={"cell_id": "c", "latency_ms": {"p50": latency_ms}, "disk_size_mb": 1.0},
                           limits=LIMITS)


def test_shares_use_the_peak_of_the_cells_arithmetic():
    out = _classification(1e-5)  # 960 FLOPs in 10 ns: 96 GFLOP/s
    assert out["compute_peak"] == "matmul_fp32" and out["compute_share"] == pytest.approx(0.96)
    assert out["arithmetic_intensity"] == pytest.approx(960 / 1024 / 1024, abs=1e-3)
    int8 = _classification(1e-5, quant="dynamic_int8", backend="onnxruntime")
    assert int8["compute_peak"] == "matmul_int8_ort" and int8["compute_share"] == pytest.approx(0.24)
    # Weight-only int8 dequantizes to float before the matmul: the fp32 roof.
    assert _classification(1e-5, quant="int8wo")["compute_peak"] == "matmul_fp32"


def test_a_share_above_one_is_an_error_never_a_figure():
    with pytest.raises(EfficiencyError, match=r"c: achieved GFLOP/s 192.0 is 1.92x the measured peak 100.0"):
        _classification(5e-6)


def test_decode_bandwidth_counts_weights_once_per_step_plus_the_kv_cache():
    extra = {"cell_id": "g", "latency_ms": {"p50": 1000.0}, "ttft_p50_ms": 100.0, "tpot_p50_ms": 100.0,
             "disk_size_mb": 500.0}
    out = cell_efficiency(config=LLAMA, task="text-generation", limits=LIMITS, extra_info=extra,
                          params={"quant": "fp32", "backend": "pytorch", "batch_size": 2, "prompt_len": 4,
                                  "new_tokens": 3})
    shape = flops.shape_of(LLAMA, classifier=False)
    step = 500 * 1024 * 1024 + flops.kv_cache_bytes_read(shape, batch=2, context=6, bytes_per_element=4)
    assert out["decode_bytes_per_token"] == round(step / 2)
    assert out["decode_bandwidth_gbs"] == pytest.approx(step / 0.100 / 1e9, rel=1e-3)
    assert out["bandwidth_share"] == pytest.approx(step / 0.100 / 1e9 / 12.0, abs=1e-4)
    assert 0 <= out["compute_share"] <= 1 and out["flops_per_call"] == sum(
        flops.generate_flops(shape, batch=2, prompt=4, new_tokens=3))


def test_weights_a_runtime_converts_on_load_count_at_the_bytes_it_reads():
    # OpenVINO's bf16 inference on a float32 IR: the plugin halves the weights when it compiles,
    # so a decode step reads runtime_weight_bytes, not the IR's size on disk.
    extra = {"cell_id": "g", "latency_ms": {"p50": 1000.0}, "ttft_p50_ms": 100.0, "tpot_p50_ms": 100.0,
             "disk_size_mb": 500.0, "quant_config": {"runtime_weight_bytes": 250 * 1024 * 1024,
                                                     "compute_dtype": "bfloat16"}}
    params = {"quant": "bf16", "backend": "openvino", "batch_size": 1, "prompt_len": 4, "new_tokens": 3}
    out = cell_efficiency(config=LLAMA, task="text-generation", limits=LIMITS, extra_info=extra, params=params)
    shape = flops.shape_of(LLAMA, classifier=False)
    kv = flops.kv_cache_bytes_read(shape, batch=1, context=6, bytes_per_element=2)
    assert out["decode_bytes_per_token"] == 250 * 1024 * 1024 + kv
    del extra["quant_config"]["runtime_weight_bytes"]
    disk = cell_efficiency(config=LLAMA, task="text-generation", limits=LIMITS, extra_info=extra, params=params)
    assert disk["decode_bytes_per_token"] == 500 * 1024 * 1024 + kv


def test_cost_per_million_from_throughput():
    assert cost_figures({"throughput_samples_per_s": 100.0}, 3.6) == {
        "price_per_hour": 3.6, "cost_per_million_inferences": pytest.approx(10.0)}
    assert cost_figures({"total_tokens_per_s": 50.0}, 1.8)["cost_per_million_output_tokens"] == pytest.approx(10.0)
    assert cost_figures({"throughput_samples_per_s": 100.0}, None) == {}


def test_limits_are_measured_once_and_cached_per_machine_key(isolated_cache, monkeypatch):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return {"schema": 1, "device": "cpu", "limits": {"matmul_fp32": {"peak": 1.0}}}

    monkeypatch.setattr(limits, "measure_limits", fake)
    first = limits.machine_limits(threads=1)
    second = limits.machine_limits(threads=1)
    assert len(calls) == 1 and first["cached"] is False and second["cached"] is True
    limits.machine_limits(threads=2)  # another thread count is another key
    assert len(calls) == 2
    stored = list((isolated_cache / "machine-limits").glob("*.json"))
    assert len(stored) == 2 and json.loads(stored[0].read_text())["limits"]


def _sequence_of_peaks(monkeypatch, peaks):
    """measure_limits returns these fp32 peaks in turn (as a loaded, then a quiet machine would)."""
    calls = []

    def fake(**kwargs):
        value = peaks[len(calls)]
        calls.append(kwargs)
        return {"schema": 1, "device": "cpu", "limits": {"matmul_fp32": {"name": "matmul_fp32", "peak": value}}}

    monkeypatch.setattr(limits, "measure_limits", fake)
    return calls


def test_a_busy_measurement_never_lowers_a_peak_and_a_quiet_one_raises_it(isolated_cache, monkeypatch):
    calls = _sequence_of_peaks(monkeypatch, [116.0, 310.0, 120.0])
    assert limits.machine_limits(threads=1)["limits"]["matmul_fp32"]["peak"] == 116.0
    raised = limits.machine_limits(threads=1, refresh=True)
    assert raised["limits"]["matmul_fp32"]["peak"] == 310.0 and raised["cached"] is False
    kept = limits.machine_limits(threads=1, refresh=True)  # measured while busy again: 120
    assert kept["limits"]["matmul_fp32"]["peak"] == 310.0
    assert len(calls) == 3
    assert kept["limits"]["matmul_fp32"]["measured_at"] and kept["measured_at"]


def test_an_old_cache_entry_is_measured_again(isolated_cache, monkeypatch):
    calls = _sequence_of_peaks(monkeypatch, [200.0, 250.0])
    now = [1_000_000.0]
    monkeypatch.setattr(limits, "_now", lambda: now[0])
    limits.machine_limits(threads=1)
    now[0] += limits.MAX_AGE_S - 1
    assert limits.machine_limits(threads=1)["cached"] is True and len(calls) == 1
    now[0] += 2
    again = limits.machine_limits(threads=1)
    assert again["cached"] is False and len(calls) == 2 and again["limits"]["matmul_fp32"]["peak"] == 250.0


def test_a_cell_past_a_cached_peak_remeasures_once_then_records_the_error():
    from quantbench.cells import Cell
    from quantbench.efficiency.record import record_figures

    cell = Cell("m", "d", "fp32", "pytorch", "cpu", 8, 64)
    config = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 2,
              "vocab_size": 100, "max_position_embeddings": 128, "model_type": "bert"}
    extra = {"cell_id": cell.id, "disk_size_mb": 1.0, "latency_ms": {"p50": 1.0}}
    low = {"limits": {"matmul_fp32": {"peak": 0.001}}}
    high = {"limits": {"matmul_fp32": {"peak": 1e6}}}
    remeasured = []

    def remeasure(result):
        def again():
            remeasured.append(1)
            return result
        return again

    fixed = record_figures(cell, extra, config=config, limits=low, price_per_hour=None, remeasure=remeasure(high))
    assert fixed["limits_remeasured"] is True and 0 < fixed["compute_share"] <= 1 and "efficiency_error" not in fixed
    still = record_figures(cell, extra, config=config, limits=low, price_per_hour=None, remeasure=remeasure(low))
    assert "measured peak" in still["efficiency_error"] and "compute_share" not in still
    assert len(remeasured) == 2


def test_a_real_small_measurement_has_every_limit_with_its_spread():
    measured = limits.measure_limits(matmul_n=128, stream_mb=4, repeats=3)
    names = set(measured["limits"])
    assert {"matmul_fp32", "bandwidth_copy", "bandwidth_triad"} <= names
    for entry in measured["limits"].values():
        assert entry["peak"] == max(entry["repetitions"]) > 0 and len(entry["repetitions"]) == 3
        assert entry["min"] <= entry["median"] <= entry["peak"] and entry["method"] and entry["size"]


def test_compare_prices_each_machine_and_names_the_cheapest(tmp_path, capsys):
    from quantbench import cli
    from tests.run_factory import make_run

    slow, fast = make_run(seed=1), make_run(seed=2, latency_scale=0.5)  # fast: twice the throughput
    (tmp_path / "a.json").write_text(json.dumps(slow))
    (tmp_path / "b.json").write_text(json.dumps(fast))
    code = cli.main(["compare", f"{tmp_path / 'a.json'}@1.0", f"{tmp_path / 'b.json'}@3.0", "--label", "A",
                     "--label", "B", "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    table = json.loads((tmp_path / "out" / "cost.json").read_text())
    by = {(r["machine"], r["cell"]): r["cost_per_million"] for r in table["rows"]}
    cell = "minilm-tweets-dynamic_int8-onnxruntime-cpu-bs8-seq64"
    # B is under twice as fast at three times the price: it costs more per inference.
    assert by[("B", cell)] > by[("A", cell)]
    thr = next(b["extra_info"]["throughput_samples_per_s"] for b in fast["benchmarks"] if b["param"] == cell)
    assert by[("B", cell)] == pytest.approx(3.0 / 3600 / thr * 1e6, rel=1e-4)
    cheapest = table["cheapest"]["minilm"]
    assert cheapest["machine"] == "A" and cheapest["meets_quality"]
    assert "cheapest for minilm within its quality rule" in out and "USD per million inferences" in out
    assert out.count("cheaper: A") == len(by) // 2  # every cell names the cheaper machine
    with pytest.raises(SystemExit):
        cli.main(["compare"])
    assert cli.main(["compare", f"{tmp_path / 'a.json'}@free", "-o", str(tmp_path / "o2")]) == 2
    assert "is not a price in USD per hour" in capsys.readouterr().err


def test_report_draws_the_roofline_with_every_cell(tmp_path):
    import re

    from quantbench.reports import write_reports
    from tests.run_factory import make_run

    run = make_run(seed=3)
    run["machine_info"]["quantbench"]["limits"] = {"cpu": {"limits": {
        "matmul_fp32": {"peak": 140.0}, "matmul_int8_ort": {"peak": 800.0}, "bandwidth_triad": {"peak": 14.0}}}}
    latency = [b for b in run["benchmarks"] if b["name"].startswith("test_latency")]
    for i, bench in enumerate(latency):
        bench["extra_info"].update(arithmetic_intensity=10.0 + i, achieved_gflops=20.0 + i, compute_share=0.1)
    (tmp_path / "r.json").write_text(json.dumps(run))
    write_reports(tmp_path / "r.json", tmp_path / "rep", model_cards=False)
    html = (tmp_path / "rep" / "index.html").read_text()
    svg = re.search(r'<svg class="chart" data-chart="roofline-cpu".*?</svg>', html, re.S).group(0)
    assert svg.count('class="mark"') == len(latency)
    assert {'data-roof="matmul_fp32"', 'data-roof="matmul_int8_ort"', 'data-roof="bandwidth"'} <= set(
        re.findall(r'data-roof="[^"]+"', svg))


def test_the_gate_does_not_read_measured_limits_as_another_machine():
    from quantbench.gate.machine import machine_differences
    from tests.run_factory import DEFAULT_MACHINE

    base = json.loads(json.dumps(DEFAULT_MACHINE))
    current = json.loads(json.dumps(DEFAULT_MACHINE))
    base["quantbench"]["limits"] = {"cpu": {"cached": False, "limits": {"matmul_fp32": {"peak": 330.0}}}}
    current["quantbench"]["limits"] = {"cpu": {"cached": True, "limits": {"matmul_fp32": {"peak": 300.0}}}}
    assert machine_differences(base, current) == []
    current["quantbench"]["torch_threads"] = 4
    assert [d.field for d in machine_differences(base, current)] == ["quantbench.torch_threads"]
