"""Synthetic ``test_serving`` records, in the shape bench/test_serving.py writes them."""

from __future__ import annotations

from typing import Any

from tests.run_factory import _stats, make_run

REFERENCE = {"name": "torch-bert-1layer-384h-fp32-bs4-seq64", "device": "cpu", "torch": "2.13.0", "threads": 2}


def _points(capacity: float | None, upper: float, figure: str, limit: float) -> list[dict[str, Any]]:
    """Bisection points of a system whose latency is ``limit / 2`` below ``capacity`` and 3x the limit above."""
    lo, hi, out = 0.0, upper, []
    for _ in range(4):
        rate = (lo + hi) / 2
        valid = capacity is not None and rate <= capacity
        value = limit / 2 if valid else limit * 3
        block = {"p50": value / 2, "p90": value, "p99": value}
        point = {"scenario": "server", "target_qps": rate, "achieved_qps": rate * 0.99,
                 "verdict": "VALID" if valid else "INVALID",
                 "reasons": [] if valid else ["the latency bound was not met at the percentile"],
                 "client": {"completed": 100, "goodput_qps": rate * (0.99 if valid else 0.2)}}
        if figure == "latency":
            point["latency_ms"] = block
        else:
            point.update(latency_ms=block, ttft_ms=block, tpot_ms={k: v / 10 for k, v in block.items()})
        out.append(point)
        lo, hi = (rate, hi) if valid else (lo, rate)
    return out


def serving_bench(model: str, quant: str, backend: str, scenario: str, *, capacity: float | None = None,
                  task: str = "text-classification", upper: float = 100.0, reference_s: float = 0.01,
                  offline: float = 80.0, single_ms: float = 9.0, settings=(1, 4),
                  ci_share: float | None = None) -> dict[str, Any]:
    """``ci_share``: the capacity's 95 % interval is +-that share of it (the knee's fit), else none."""
    generation = task == "text-generation"
    cell_id = f"{model}-tweets-{quant}-{backend}-cpu-{scenario}"
    slo_ms = {"ttft": 500.0, "tpot": 50.0} if generation else {"latency": 100.0}
    percentile = 0.9 if generation else 0.99
    slo = "TTFT p90 ≤ 500 ms and TPOT p90 ≤ 50 ms" if generation else "p99 ≤ 100 ms"
    setting_records = []
    for i, s in enumerate(settings):
        # The last setting is the best; the others reach half its capacity.
        cap = None if capacity is None else capacity * (1.0 if i == len(settings) - 1 else 0.5)
        record: dict[str, Any] = {"setting": s, "system": {"system": "test system"}}
        if scenario == "server":
            record.update(upper_qps=upper, points=_points(cap, upper, "ttft" if generation else "latency",
                                                         slo_ms.get("ttft", slo_ms.get("latency"))),
                          capacity_qps=cap, stopped="maximum number of points (4)")
            if cap is None:
                record["message"] = f"no rate meets {slo}: at the lowest rate, 12.5 QPS, p99 was 300 ms"
        setting_records.append(record)
    extra: dict[str, Any] = {
        "cell_id": cell_id, "dataset": "tweets", "task": task, "scenario": scenario, "disk_size_mb": 20.0,
        "quant_config": {"method": quant},
        "serving": {"note": "not an MLPerf result", "scenario": scenario, "slo_ms": slo_ms, "percentile": percentile,
                    "slo": slo, "setting": "parallel" if backend == "llamacpp" else "max_batch",
                    "settings": setting_records, "logs": f"serving/{cell_id}"},
        "reference": REFERENCE, "reference_s": [reference_s],
    }
    if scenario == "server":
        extra["slo"] = slo
        if capacity is not None:
            extra.update(capacity_qps=capacity, capacity_setting=settings[-1], capacity_goodput_qps=capacity * 0.99)
            if ci_share is not None:
                extra.update(capacity_qps_ci95=[capacity * (1 - ci_share), capacity * (1 + ci_share)],
                             capacity_qps_se=capacity * ci_share / 1.96)
        else:
            extra["capacity_message"] = "; ".join(f"setting {r['setting']}: {r['message']}" for r in setting_records)
    elif scenario == "offline":
        extra.update(offline_qps=offline, offline_setting=settings[-1])
    else:
        extra["single_stream_p90_ms"] = single_ms
    params = {"model": model, "quant": quant, "backend": backend, "device": "cpu", "scenario": scenario}
    params.update({"task": task} if generation else {"seq_len": 128})
    return {"group": "serving", "name": f"test_serving[{cell_id}]",
            "fullname": f"bench/test_serving.py::test_serving[{cell_id}]", "params": params, "param": cell_id,
            "extra_info": extra, "options": {}, "stats": _stats([12.0, 12.0 + 1e-6])}


def serving_run(capacities: dict[tuple[str, str], float | None], *, reference_s: float = 0.01,
                accuracy: dict[str, float] | None = None, task: str = "text-classification",
                ci_share: float | None = None) -> dict[str, Any]:
    """A classifier run with serving cells (every scenario) and accuracy for each variant."""
    from tests.run_factory import accuracy_bench

    run = make_run(variants=(), with_accuracy=False)
    for (quant, backend), capacity in capacities.items():
        for scenario in ("single_stream", "offline", "server"):
            bench = serving_bench("minilm", quant, backend, scenario, capacity=capacity, task=task,
                                  reference_s=reference_s, ci_share=ci_share)
            bench["stats"] = _stats([12.0, 12.0])
            bench["stats"]["data"] = [12.0]
            run["benchmarks"].append(bench)
        if accuracy is not None:
            run["benchmarks"].append(accuracy_bench("minilm", quant, backend, "cpu", accuracy=accuracy[quant],
                                                    fp32_accuracy=accuracy["fp32"]))
    run["quantbench"]["suite"] = {"name": "serving", "recommend_by": "capacity"}
    return run
