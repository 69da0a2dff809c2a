"""Synthetic run files in the exact shape `pytest bench/ --benchmark-json` writes.

Tests for reports, gates and comparisons build runs here instead of running a sweep. The
figures are seeded random draws around values the caller chooses, so a test can plant a
regression (``latency_scale=1.4``) and know what the right answer is.
"""

from __future__ import annotations

import copy
import itertools
import random
import statistics
from typing import Any

DEFAULT_MACHINE = {
    "node": "ci-runner-1",
    "processor": "x86_64",
    "machine": "x86_64",
    "python_implementation": "CPython",
    "python_version": "3.11.7",
    "system": "Linux",
    "release": "6.1.0",
    "cpu": {"brand_raw": "Test CPU @ 2.0GHz", "count": 2},
    "quantbench": {
        "cpu_model": "Test CPU @ 2.0GHz",
        "cpu_cores_physical": 1,
        "cpu_cores_logical": 2,
        "ram_gb": 23.4,
        "gpu": None,
        "torch_threads": 2,
        "versions": {"torch": "2.13.0", "transformers": "4.57.6", "onnxruntime": "1.31.1",
                     "bitsandbytes": "0.50.2", "optimum": "2.1.0", "quantbench": "0.1.0"},
    },
}

# fp32 median seconds per sample at seq 64, and relative speed/size of each variant.
_VARIANTS = {
    ("fp32", "pytorch"): (1.00, 1.00, 0),
    ("dynamic_int8", "pytorch"): (0.40, 0.35, 37),
    ("nf4", "pytorch"): (0.55, 0.30, 37),
    ("fp32", "onnxruntime"): (0.45, 1.00, 0),
    ("dynamic_int8", "onnxruntime"): (0.25, 0.25, 42),
    ("static_int8", "onnxruntime"): (0.28, 0.25, 84),
}


def _latency_block(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": statistics.median(ms), "p90": q[89], "p95": q[94], "p99": q[98],
            "mean": statistics.fmean(ms), "std": statistics.stdev(ms), "min": ms[0], "max": ms[-1]}


def _stats(samples: list[float]) -> dict[str, Any]:
    s = sorted(samples)
    q1, _, q3 = statistics.quantiles(s, n=4)
    mean = statistics.fmean(s)
    return {"min": s[0], "max": s[-1], "mean": mean, "stddev": statistics.stdev(s), "rounds": len(s),
            "median": statistics.median(s), "iqr": q3 - q1, "q1": q1, "q3": q3, "iqr_outliers": 0,
            "stddev_outliers": 0, "outliers": "0;0", "ld15iqr": s[0], "hd15iqr": s[-1],
            "ops": 1 / mean, "total": sum(s), "data": list(samples), "iterations": 1}


def latency_bench(model: str, quant: str, backend: str, device: str, batch_size: int, seq_len: int,
                  *, rng: random.Random, scale: float = 1.0, rounds: int = 20, noise: float = 0.03,
                  dataset: str = "tweets") -> dict[str, Any]:
    speed, size, layers = _VARIANTS.get((quant, backend), (1.0, 1.0, 1))
    base = 0.004 * batch_size * speed * (seq_len / 64) * scale + 0.002
    samples = [base * (1 + rng.gauss(0, noise)) for _ in range(rounds)]
    lat = _latency_block(samples)
    cell_id = f"{model}-{dataset}-{quant}-{backend}-{device}-bs{batch_size}-seq{seq_len}"
    extra = {
        "cell_id": cell_id, "dataset": dataset,
        "latency_ms": lat,
        "throughput_samples_per_s": batch_size / (lat["p50"] / 1000),
        "throughput_tokens_per_s": batch_size * seq_len / (lat["p50"] / 1000),
        "peak_rss_mb": 120 * size + 2 * batch_size,
        "disk_size_mb": 90.9 * size,
        "param_count": 22_713_216,
        "build_seconds": 3.2,
        "quantized_layers": layers,
        "quant_config": {"method": quant},
        "threads": 2,
        "rounds": rounds,
        "warmup_rounds": 3,
    }
    return {
        "group": "latency", "name": f"test_latency[{cell_id}]",
        "fullname": f"bench/test_performance.py::test_latency[{cell_id}]",
        "params": {"model": model, "quant": quant, "backend": backend, "device": device,
                   "batch_size": batch_size, "seq_len": seq_len},
        "param": cell_id, "extra_info": extra, "options": {"disable_gc": False, "timer": "perf_counter",
                                                              "min_rounds": rounds, "max_time": 1.0,
                                                              "min_time": 5e-06, "warmup": False},
        "stats": _stats(samples),
    }


def accuracy_bench(model: str, quant: str, backend: str, device: str, *, accuracy: float,
                   fp32_accuracy: float, dp: float = 0.05, eo: float = 0.08, flip_rate: float = 0.02,
                   batch_size: int = 64, seq_len: int = 128, dataset: str = "tweets") -> dict[str, Any]:
    cell_id = f"{model}-{dataset}-{quant}-{backend}-{device}"
    extra = {
        "cell_id": cell_id, "dataset": dataset, "n_examples": 2000,
        "accuracy": accuracy, "f1_macro": accuracy - 0.03, "precision_macro": accuracy - 0.02,
        "recall_macro": accuracy - 0.04,
        "agreement_with_fp32": 1.0 if quant == "fp32" else 0.97,
        "mean_abs_prob_diff": 0.0 if quant == "fp32" else 0.02,
        "accuracy_delta_pts": round((accuracy - fp32_accuracy) * 100, 4),
        "keeps_99pct_accuracy": accuracy >= 0.99 * fp32_accuracy,
        "dp_difference": dp, "eo_difference": eo, "worst_group_accuracy": accuracy - 0.05,
        "flip_rate": flip_rate, "score_gap_mean": flip_rate / 2, "score_gap_max": flip_rate * 3,
        "fairness": {
            "probe": {
                "by_group": {
                    "female": {"accuracy": accuracy - 0.01, "selection_rate": 0.48, "count": 240},
                    "male": {"accuracy": accuracy - 0.05, "selection_rate": 0.45, "count": 240},
                },
                "dp_difference": dp, "eo_difference": eo, "flip_rate": flip_rate,
            }
        },
    }
    return {
        "group": "accuracy", "name": f"test_accuracy[{cell_id}]",
        "fullname": f"bench/test_accuracy.py::test_accuracy[{cell_id}]",
        "params": {"model": model, "quant": quant, "backend": backend, "device": device,
                   "batch_size": batch_size, "seq_len": seq_len},
        "param": cell_id, "extra_info": extra, "options": {},
        "stats": _stats([1.5, 1.6, 1.55]),
    }


def make_run(*, seed: int = 0, models=("minilm",), devices=("cpu",), batch_sizes=(1, 8, 32),
             seq_lens=(64,), variants=tuple(_VARIANTS), latency_scale: float | dict = 1.0,
             noise: float = 0.03, rounds: int = 20, accuracy: float | dict = 0.90,
             machine: dict | None = None, with_accuracy: bool = True,
             failed: list | None = None, skipped: list | None = None) -> dict[str, Any]:
    """A whole run file. ``latency_scale`` and ``accuracy`` may map ``quant`` to a value."""
    rng = random.Random(seed)
    benchmarks = []

    def pick(value, quant, default):
        return value.get(quant, default) if isinstance(value, dict) else value

    for model, device, (quant, backend) in itertools.product(models, devices, variants):
        for bs, seq in itertools.product(batch_sizes, seq_lens):
            benchmarks.append(latency_bench(model, quant, backend, device, bs, seq, rng=rng,
                                            scale=pick(latency_scale, quant, 1.0), rounds=rounds, noise=noise))
        if with_accuracy:
            fp32 = pick(accuracy, "fp32", 0.90)
            benchmarks.append(accuracy_bench(model, quant, backend, device,
                                             accuracy=pick(accuracy, quant, 0.90), fp32_accuracy=fp32))
    return {
        "machine_info": copy.deepcopy(machine or DEFAULT_MACHINE),
        "commit_info": {"id": "0" * 40, "branch": "main", "dirty": False, "project": "quantbench"},
        "benchmarks": benchmarks,
        "datetime": "2026-11-22T02:00:00.000000+00:00",
        "version": "5.3.1",
        "quantbench": {
            "schema_version": 1,
            "suite": {"name": "default", "path": "suites/default.yaml"},
            "failed": failed or [],
            "skipped": skipped or [],
        },
    }


# Generation variants: (decode seconds per token at bs1, relative prefill cost, size, proof count,
# perplexity, KL against fp32).
_LLM_VARIANTS = {
    ("fp32", "pytorch"): (0.037, 1.00, 1.00, 0, 286.0, 0.0),
    ("int8wo", "pytorch"): (0.038, 1.00, 0.41, 210, 284.0, 0.005),
    ("dynamic_int8", "pytorch"): (0.024, 0.50, 0.41, 210, 1250.0, 1.79),
    ("nf4", "pytorch"): (0.090, 2.00, 0.30, 210, 300.0, 0.04),
    ("fp32", "onnxruntime"): (0.030, 0.80, 1.00, 0, 286.0, 0.0),
    ("dynamic_int8", "onnxruntime"): (0.022, 0.50, 0.30, 270, 310.0, 0.08),
}


def generation_bench(model: str, quant: str, backend: str, device: str, batch_size: int, *, rng: random.Random,
                     prompt_len: int = 64, new_tokens: int = 32, decode_scale: float = 1.0, rounds: int = 10,
                     noise: float = 0.03, steps: bool = True, prefill_rounds: int = 0,
                     prefill_scale: float = 1.0) -> dict[str, Any]:
    tpot_s, prefill, size, layers, _, _ = _LLM_VARIANTS[(quant, backend)]
    tpot = [tpot_s * (1 + 0.1 * (batch_size - 1)) * decode_scale * (1 + rng.gauss(0, noise)) for _ in range(rounds)]
    # The first ``rounds`` TTFT samples come from the generate rounds, the rest from prefill-only rounds.
    ttft = [0.12 * prefill * prefill_scale * batch_size ** 0.8 * (1 + rng.gauss(0, noise))
            for _ in range(rounds + prefill_rounds)]
    e2e = [a + b * (new_tokens - 1) for a, b in zip(ttft, tpot)]
    lat, t_ms, d_ms = _latency_block(e2e), _latency_block(ttft), _latency_block(tpot)
    cell_id = f"{model}-tweets-{quant}-{backend}-{device}-bs{batch_size}-p{prompt_len}-n{new_tokens}"
    extra = {
        "cell_id": cell_id, "dataset": "tweets", "task": "text-generation", "base_model": "org/tiny-llm",
        "baseline_note": "fp32 = test weights dequantized", "latency_ms": lat,
        "ttft_ms": {**t_ms, "raw_s": ttft, "generate_rounds": rounds, "prefill_only_rounds": prefill_rounds},
        "tpot_ms": {**d_ms, "raw_s": tpot, **({"steps_s": [t * (1 + rng.gauss(0, noise)) for t in tpot
                                                           for _ in range(new_tokens - 1)]} if steps else {})},
        **{f"ttft_{q}_ms": t_ms[q] for q in ("p50", "p90", "p95", "p99")},
        **{f"tpot_{q}_ms": d_ms[q] for q in ("p50", "p90", "p95", "p99")},
        "decode_tokens_per_s": batch_size / (d_ms["p50"] / 1000),
        "total_tokens_per_s": batch_size * new_tokens / (lat["p50"] / 1000),
        "prefill_tokens_per_s": batch_size * prompt_len / (t_ms["p50"] / 1000),
        "peak_rss_mb": 540 * size + 4 * batch_size, "disk_size_mb": 513 * size, "param_count": 134_515_008,
        "quantized_layers": layers, "quant_config": {"method": quant}, "rounds": rounds, "build_seconds": 2.0,
    }
    return {
        "group": "generation", "name": f"test_generation[{cell_id}]",
        "fullname": f"bench/test_generation.py::test_generation[{cell_id}]",
        "params": {"model": model, "quant": quant, "backend": backend, "device": device, "batch_size": batch_size,
                   "prompt_len": prompt_len, "new_tokens": new_tokens, "task": "text-generation"},
        "param": cell_id, "extra_info": extra, "options": {}, "stats": _stats(e2e),
    }


def perplexity_bench(model: str, quant: str, backend: str, device: str, *, perplexity_scale: float = 1.0
                     ) -> dict[str, Any]:
    _, _, _, _, ppl, kl = _LLM_VARIANTS[(quant, backend)]
    fp32 = _LLM_VARIANTS[("fp32", backend)][4]
    ppl *= perplexity_scale
    cell_id = f"{model}-tweets-{quant}-{backend}-{device}"
    extra = {"cell_id": cell_id, "dataset": "tweets", "perplexity": ppl, "bits_per_byte": 2.55 * ppl / 286,
             "perplexity_delta_pct": 100 * (ppl / fp32 - 1), "fp32_perplexity": fp32, "kl_divergence": kl,
             "kl_divergence_p99": kl * 5, "top1_agreement": 1.0 - min(kl, 0.7), "continuation_agreement": 1 - kl / 2,
             "n_texts": 32, "n_tokens": 1050}
    return {"group": "lm-quality", "name": f"test_perplexity[{cell_id}]",
            "fullname": f"bench/test_perplexity.py::test_perplexity[{cell_id}]",
            "params": {"model": model, "quant": quant, "backend": backend, "device": device,
                       "task": "text-generation"},
            "param": cell_id, "extra_info": extra, "options": {}, "stats": _stats([4.0, 4.1, 4.2])}


def make_generation_run(*, seed: int = 0, model: str = "tinyllm", variants=tuple(_LLM_VARIANTS),
                        batch_sizes=(1, 8), decode_scale: float | dict = 1.0, perplexity_scale: float | dict = 1.0,
                        rounds: int = 10, noise: float = 0.03, with_classification: bool = False,
                        steps: bool = True, prefill_rounds: int = 0, prefill_scale: float | dict = 1.0) -> dict[str, Any]:
    """A run file of generation cells (and, with ``with_classification``, a classifier's too)."""
    rng = random.Random(seed)
    run = make_run(seed=seed, variants=(("fp32", "pytorch"), ("dynamic_int8", "pytorch"))) \
        if with_classification else make_run(seed=seed, variants=())

    def pick(value, quant):
        return value.get(quant, 1.0) if isinstance(value, dict) else value

    for quant, backend in variants:
        for bs in batch_sizes:
            run["benchmarks"].append(generation_bench(model, quant, backend, "cpu", bs, rng=rng, rounds=rounds,
                                                      noise=noise, decode_scale=pick(decode_scale, quant),
                                                      steps=steps, prefill_rounds=prefill_rounds,
                                                      prefill_scale=pick(prefill_scale, quant)))
        run["benchmarks"].append(perplexity_bench(model, quant, backend, "cpu",
                                                  perplexity_scale=pick(perplexity_scale, quant)))
        acc = accuracy_bench(model, quant, backend, "cpu", accuracy=0.80, fp32_accuracy=0.80)
        acc["params"] = {k: v for k, v in acc["params"].items() if k not in ("batch_size", "seq_len")}
        acc["params"]["task"] = "text-generation"
        run["benchmarks"].append(acc)
    run["quantbench"]["suite"] = {"name": "llm", "tasks": {model: "text-generation"},
                                  "quality_budget": {"kl_divergence": 0.05, "perplexity_delta_pct": 3.0}}
    return run
