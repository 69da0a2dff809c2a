"""Efficiency: FLOP counts checked by hand, shares of the peaks, cost, and the cached limits."""

from __future__ import annotations

import json

import pytest

from quantbench import isa
from quantbench.efficiency import EfficiencyError, cell_efficiency, cost_figures, flops, limits

BERT = {"model_type": "bert", "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 8, "vocab_size": 30, "id2label": {"0": "negative", "1": "positive"}}
LLAMA = {"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 16, "vocab_size": 10, "hidden_act": "silu",
         "id2label": {"0": "LABEL_0", "1": "LABEL_1"}}
LIMITS = {"limits": {"matmul_fp32": {"peak": 100.0}, "matmul_int8_onnxruntime": {"peak": 400.0},
                     "matmul_int8_fbgemm": {"peak": 200.0}, "matmul_bf16": {"peak": 300.0},
                     "matmul_int8_torch": {"peak": 1.5, "emulated": "no VNNI: torch._int_mm runs a reference loop"},
                     "matmul_ggml": {"peak": None, "unmeasured": "no stand-alone kernel"},
                     "matmul_fp32_onnxruntime": {"peak": 440.0}, "matmul_bf16_openvino": {"peak": 800.0},
                     "matmul_nf4_bnb": {"peak": 200.0},
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


def _classification(latency_ms: float, quant: str = "fp32", backend: str = "pytorch",
                    quant_config: dict | None = None) -> dict:
    return cell_efficiency(config=BERT, task="text-classification",
                           params={"quant": quant, "backend": backend, "batch_size": 1, "seq_len": 3},
                           extra_info={"cell_id": "c", "latency_ms": {"p50": latency_ms}, "disk_size_mb": 1.0,
                                       "quant_config": quant_config or {}},
                           limits=LIMITS)


def test_shares_use_the_peak_of_the_cells_arithmetic():
    out = _classification(1e-5)  # 960 FLOPs in 10 ns: 96 GFLOP/s
    assert out["compute_peak"] == "matmul_fp32" and out["compute_share"] == pytest.approx(0.96)
    assert out["arithmetic_intensity"] == pytest.approx(960 / 1024 / 1024, abs=1e-3)
    int8 = _classification(1e-5, quant="dynamic_int8", backend="onnxruntime")
    assert int8["compute_peak"] == "matmul_int8_onnxruntime" and int8["compute_share"] == pytest.approx(0.24)
    # Weight-only int8 dequantizes to float before the matmul: the fp32 roof.
    assert _classification(1e-5, quant="int8wo")["compute_peak"] == "matmul_fp32"


def test_each_method_is_taken_against_the_kernel_family_it_runs():
    # torch.ao dynamic int8 runs fbgemm's int8 linear, not torch._int_mm (the Zen 3 run measured its
    # cells at 75-147 GOP/s against a 1.4 GOP/s _int_mm "peak" and lost every efficiency figure).
    fbgemm = _classification(1e-5, quant="dynamic_int8")
    assert fbgemm["compute_peak"] == "matmul_int8_fbgemm" and fbgemm["compute_share"] == pytest.approx(0.48)
    assert "compute_peak_emulated" not in fbgemm
    # torchao int8dq runs torch._int_mm: emulated on this CPU, and the record says so.
    int8dq = _classification(1e-3, quant="int8dq")
    assert int8dq["compute_peak"] == "matmul_int8_torch" and "reference loop" in int8dq["compute_peak_emulated"]
    assert _classification(1e-5, quant="static_int8", backend="openvino")["compute_peak"] == "matmul_int8_openvino"
    # Each runtime's own float GEMM: ONNX Runtime's MLAS and OpenVINO's oneDNN ran twice torch.mm's
    # speed on one AVX-512 CPU (440 against 204 GFLOP/s), so fp32 cells of each are taken against their own.
    assert _classification(1e-5, quant="fp32", backend="onnxruntime")["compute_peak"] == "matmul_fp32_onnxruntime"
    assert _classification(1e-5, quant="fp32", backend="openvino")["compute_peak"] == "matmul_fp32_openvino"
    # A float method set to bf16 by its options runs its runtime's bf16 kernel.
    assert _classification(1e-5, quant="int8wo", backend="openvino",
                           quant_config={"inference_precision": "bf16"})["compute_peak"] == "matmul_bf16_openvino"
    assert _classification(1e-5, quant="bf16")["compute_peak"] == "matmul_bf16"
    # bitsandbytes' NF4 is timed through its own module (a fused bf16 kernel where the CPU has AVX512-BF16).
    assert _classification(1e-5, quant="nf4", quant_config={"compute_dtype": "float32"})["compute_peak"] == "matmul_nf4_bnb"
    # A builder that knows which kernel ran may say so, and that wins over the recipe.
    assert _classification(1e-5, quant="int8wo", quant_config={"compute_kernel": "bf16"})["compute_peak"] == "matmul_bf16"
    # llama.cpp's matmuls have no stand-alone kernel: no share, and the reason.
    gguf = cell_efficiency(config=LLAMA, task="text-generation", limits=LIMITS,
                           params={"quant": "q4_0", "backend": "llamacpp", "batch_size": 1, "prompt_len": 4,
                                   "new_tokens": 3},
                           extra_info={"cell_id": "g", "latency_ms": {"p50": 1.0}, "ttft_p50_ms": 0.5,
                                       "tpot_p50_ms": 0.25, "disk_size_mb": 1.0})
    assert gguf["compute_peak"] == "matmul_ggml" and gguf["compute_share"] is None
    assert gguf["compute_peak_note"] == "no stand-alone kernel" and gguf["bandwidth_share"] is not None


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


def _fake_measure(calls, peaks=None):
    """measure_limits returning one fp32 peak per call (``peaks`` in turn) for the kernels it is asked."""
    def fake(**kwargs):
        value = (peaks or [1.0] * 100)[len(calls)]
        calls.append(kwargs)
        names = kwargs.get("kernels") or ["fp32"]
        entries = {f"matmul_{k}": {"name": f"matmul_{k}", "kernel": k, "peak": value} for k in names}
        if kwargs.get("bandwidth", True):
            entries.update({n: {"name": n, "peak": 10.0} for n in ("bandwidth_copy", "bandwidth_triad")})
        return {"schema": limits.SCHEMA, "device": "cpu", "limits": entries, "seconds": 0.1}
    return fake


def test_limits_are_measured_once_and_cached_per_machine_key(isolated_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(limits, "measure_limits", _fake_measure(calls))
    first = limits.machine_limits(threads=1, kernels=["int8_fbgemm"])
    second = limits.machine_limits(threads=1, kernels=["int8_fbgemm"])
    assert len(calls) == 1 and first["cached"] is False and second["cached"] is True
    assert calls[0]["kernels"] == ["fp32", "int8_fbgemm"]  # fp32 always, then what the cells run
    limits.machine_limits(threads=2, kernels=["int8_fbgemm"])  # another thread count is another key
    assert len(calls) == 2
    stored = list((isolated_cache / "machine-limits").glob("*.json"))
    assert len(stored) == 2 and json.loads(stored[0].read_text())["limits"]


def test_a_family_the_cache_lacks_is_measured_alone_and_added(isolated_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(limits, "measure_limits", _fake_measure(calls))
    limits.machine_limits(threads=1, kernels=["int8_fbgemm"])
    added = limits.machine_limits(threads=1, kernels=["int8_fbgemm", "int8_onnxruntime"])
    assert calls[1]["kernels"] == ["int8_onnxruntime"] and calls[1]["bandwidth"] is False
    assert {"matmul_fp32", "matmul_int8_fbgemm", "matmul_int8_onnxruntime", "bandwidth_copy"} <= set(added["limits"])
    assert added["measured_now"] == ["matmul_int8_onnxruntime"]
    assert limits.machine_limits(threads=1, kernels=["int8_onnxruntime"])["cached"] is True and len(calls) == 2


def test_the_cache_key_names_the_isa_so_a_zen3_never_reads_a_zen4s_limits(isolated_cache, monkeypatch):
    # Both machines simulated from whichever this is: shown (a Zen 4's flags) and hidden (a Zen 3's).
    calls = []
    monkeypatch.setattr(limits, "measure_limits", _fake_measure(calls))
    avx512 = "avx512f,avx512_vnni,avx512_bf16"
    monkeypatch.setenv(isa.SHOW_FLAGS_ENV, avx512)
    limits.machine_limits(threads=1)
    limits.machine_limits(threads=1)
    assert len(calls) == 1  # the same ISA reads its cached limits
    monkeypatch.delenv(isa.SHOW_FLAGS_ENV)
    monkeypatch.setenv(isa.HIDE_FLAGS_ENV, avx512)
    limits.machine_limits(threads=1)
    assert len(calls) == 2


def test_a_busy_measurement_never_lowers_a_peak_and_a_quiet_one_raises_it(isolated_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(limits, "measure_limits", _fake_measure(calls, [116.0, 310.0, 120.0]))
    assert limits.machine_limits(threads=1, kernels=[])["limits"]["matmul_fp32"]["peak"] == 116.0
    raised = limits.machine_limits(threads=1, kernels=[], refresh=True)
    assert raised["limits"]["matmul_fp32"]["peak"] == 310.0 and raised["cached"] is False
    kept = limits.machine_limits(threads=1, kernels=[], refresh=True)  # measured while busy again: 120
    assert kept["limits"]["matmul_fp32"]["peak"] == 310.0
    assert len(calls) == 3
    assert kept["limits"]["matmul_fp32"]["measured_at"] and kept["measured_at"]


def test_an_old_cache_entry_is_measured_again(isolated_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(limits, "measure_limits", _fake_measure(calls, [200.0, 250.0]))
    now = [1_000_000.0]
    monkeypatch.setattr(limits, "_now", lambda: now[0])
    limits.machine_limits(threads=1, kernels=[])
    now[0] += limits.MAX_AGE_S - 1
    assert limits.machine_limits(threads=1, kernels=[])["cached"] is True and len(calls) == 1
    now[0] += 2
    again = limits.machine_limits(threads=1, kernels=[])
    assert again["cached"] is False and len(calls) == 2 and again["limits"]["matmul_fp32"]["peak"] == 250.0


def test_a_cell_past_its_familys_peak_retimes_that_family_once_then_records_the_error(isolated_cache, monkeypatch):
    from quantbench.cells import Cell
    from quantbench.efficiency.record import record_figures

    cell = Cell("m", "d", "dynamic_int8", "pytorch", "cpu", 8, 64)
    config = {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 2,
              "vocab_size": 100, "max_position_embeddings": 128, "model_type": "bert"}
    extra = {"cell_id": cell.id, "disk_size_mb": 1.0, "latency_ms": {"p50": 1.0}}
    peaks = iter([0.001, 1e6])  # the first timing of fbgemm's kernel was busy; the second is quiet
    timed = []

    def fake_kernel(name, **kwargs):
        timed.append(name)
        return {"name": f"matmul_{name}", "kernel": name, "peak": next(peaks) if name == "int8_fbgemm" else 1e6}

    monkeypatch.setattr(limits, "measure_kernel", fake_kernel)
    monkeypatch.setattr(limits, "_bandwidth", lambda device, mb=0: [])
    monkeypatch.setattr(limits, "_MEMO", {})
    monkeypatch.setattr(limits, "_REMEASURED", set())
    low = limits.machine_limits(device="cpu", threads=2, kernels=["int8_fbgemm"])
    fixed = record_figures(cell, extra, config=config, limits=low, price_per_hour=None, threads=2)
    assert fixed["limits_remeasured"] == "int8_fbgemm" and 0 < fixed["compute_share"] <= 1
    assert timed == ["fp32", "int8_fbgemm", "int8_fbgemm"]  # only the family past its peak is timed again
    # Once per run and family: a second cell past a (now stale) peak records the error, no new timing.
    still = record_figures(cell, extra, config=config, limits=low, price_per_hour=None, threads=2)
    assert "measured peak" in still["efficiency_error"] and "compute_share" not in still and len(timed) == 3


def test_a_family_no_run_measured_is_measured_when_a_cell_needs_it(isolated_cache, monkeypatch):
    from quantbench.cells import Cell
    from quantbench.efficiency.record import record_figures

    monkeypatch.setattr(limits, "_MEMO", {})
    timed = []
    monkeypatch.setattr(limits, "measure_kernel", lambda name, **kw: timed.append(name) or {
        "name": f"matmul_{name}", "kernel": name, "peak": 1e6})
    monkeypatch.setattr(limits, "_bandwidth", lambda device, mb=0: [])
    run_limits = limits.machine_limits(device="cpu", threads=2, kernels=[])
    cell = Cell("m", "d", "bnb_int8", "pytorch", "cpu", 8, 64)
    extra = {"cell_id": cell.id, "disk_size_mb": 1.0, "latency_ms": {"p50": 1.0},
             "quant_config": {"compute_kernel": "int8_torch"}}
    out = record_figures(cell, extra, config=BERT, limits=run_limits, price_per_hour=None, threads=2)
    assert timed == ["fp32", "int8_torch"] and out["compute_peak"] == "matmul_int8_torch"


def test_a_real_bounded_measurement_has_each_family_with_its_spread_and_isa():
    measured = limits.measure_limits(kernels=["fp32", "int8_fbgemm", "int8_torch", "ggml"], budget_s=0.3,
                                     stream_mb=4)
    names = set(measured["limits"])
    assert {"matmul_fp32", "matmul_int8_fbgemm", "bandwidth_copy", "bandwidth_triad"} <= names
    assert measured["isa"]["label"] and measured["isa"]["avx2"] in (True, False)
    for entry in measured["limits"].values():
        if entry["name"] == "matmul_ggml":
            assert entry["peak"] is None and "no stand-alone kernel" in entry["unmeasured"]
            continue
        assert entry["peak"] == max(entry["repetitions"]) > 0 and len(entry["repetitions"]) >= 3
        assert entry["min"] <= entry["median"] <= entry["peak"] and entry["method"] and entry["size"]
    assert "dynamic quantized Linear" in measured["limits"]["matmul_int8_fbgemm"]["method"]
    # _int_mm is emulated exactly where the CPU has no VNNI (or AMX-INT8).
    vnni = measured["isa"]["int8_vnni"]
    assert bool(measured["limits"]["matmul_int8_torch"]["emulated"]) is (not vnni)


def test_the_nf4_probe_runs_bitsandbytes_path_the_cells_run():
    # Out of training mode, as a built variant is: on a CPU with AVX512-BF16 bitsandbytes runs its fused
    # NF4 x bf16 kernel (2.5x its training-mode dequantize path here), elsewhere the dequantize path.
    pytest.importorskip("bitsandbytes")
    from quantbench import isa as isa_mod

    measured = limits.measure_limits(kernels=["nf4_bnb"], budget_s=0.3, bandwidth=False)
    entry = measured["limits"]["matmul_nf4_bnb"]
    assert entry["peak"] > 0
    assert ("fused NF4 x bf16" in entry["method"]) is isa_mod.this_cpu()["bf16_native"]


def test_hiding_vnni_and_bf16_marks_those_families_emulated(monkeypatch):
    monkeypatch.setenv(isa.HIDE_FLAGS_ENV, "avx512_vnni,avx_vnni,amx_int8,avx512_bf16,amx_bf16")
    monkeypatch.setattr(limits, "time_kernel", lambda *a, **k: {"peak": 1.0, "repetitions": [1.0]})
    for name in ("int8_torch", "bf16"):
        entry = limits.measure_kernel(name, device="cpu", threads=1, cpu_isa=isa.this_cpu())
        assert entry["emulated"] and "has none of" in entry["emulated"]
    assert limits.measure_kernel("int8_fbgemm", device="cpu", threads=1, cpu_isa=isa.this_cpu())["emulated"] is None


def test_kernel_sizing_stops_early_on_a_slow_kernel_and_keeps_the_budget():
    from quantbench.efficiency.kernels import Probe, time_kernel

    built = []

    def slow(n):  # 1 GOP/s: a 2048³ product would take 17 s
        built.append(n)
        return Probe(call=lambda: None, ops=2.0 * n ** 3, shape=f"{n}", method="slow")

    out = time_kernel(slow, name="matmul_x", unit="GOP/s", budget_s=1.0, timer=lambda p: p.ops / 1e9)
    assert built[-1] <= 512 and out["peak"] == pytest.approx(1.0)
    assert len(out["repetitions"]) >= 3


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
        "matmul_fp32": {"peak": 140.0}, "matmul_int8_onnxruntime": {"peak": 800.0},
        "matmul_bf16": {"peak": 0.3, "emulated": "no AVX512_BF16"}, "matmul_ggml": {"peak": None},
        "bandwidth_triad": {"peak": 14.0}}}}
    latency = [b for b in run["benchmarks"] if b["name"].startswith("test_latency")]
    for i, bench in enumerate(latency):
        bench["extra_info"].update(arithmetic_intensity=10.0 + i, achieved_gflops=20.0 + i, compute_share=0.1)
    (tmp_path / "r.json").write_text(json.dumps(run))
    write_reports(tmp_path / "r.json", tmp_path / "rep", model_cards=False)
    html = (tmp_path / "rep" / "index.html").read_text()
    svg = re.search(r'<svg class="chart" data-chart="roofline-cpu".*?</svg>', html, re.S).group(0)
    assert svg.count('class="mark"') == len(latency)
    # Native, measured roofs are drawn; an emulated one (a slow reference path) and an unmeasured one are not.
    assert set(re.findall(r'data-roof="[^"]+"', svg)) == {
        'data-roof="matmul_fp32"', 'data-roof="matmul_int8_onnxruntime"', 'data-roof="bandwidth"'}


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
