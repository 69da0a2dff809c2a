"""What a ``test_serving`` cell records in pytest-benchmark's ``extra_info``.

Flat figures the gate and reports read (results.METRICS, kind "serving"):

* server: ``capacity_qps`` (best over the settings, named by ``capacity_setting``) and
  ``capacity_goodput_qps`` (the queries meeting every SLO limit per second at that point); when no
  rate meets the SLO, no capacity and ``capacity_message``, the one line saying so;
* offline: ``offline_qps`` (and ``offline_tokens_per_s`` for generation), best over the settings;
* single_stream: ``single_stream_p90_ms`` (and TTFT/TPOT p90 for generation).

``serving`` holds the rest: the SLO, LoadGen's settings and version, each setting's system (the
batcher's settings, or the server's command line and version) and every point (target and achieved
QPS, LoadGen's percentiles or TTFT/TPOT, the system's own figures with ITL and goodput, the verdict
and its reasons, the log folder), and the note that these are shortened runs, not an MLPerf result.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import numpy as np

from quantbench.measures.record import build_facts
from quantbench.serving import NOT_A_SUBMISSION
from quantbench.serving.search import judged_slo_text, slo_text

GOODPUT = ("goodput (vLLM, DistServe): queries that met every SLO limit (the system's own clock: from LoadGen "
           "issuing the query to its answer), per second from the first arrival to the last answer")


def _loadgen_version() -> str | None:
    try:
        return importlib.metadata.version("mlcommons-loadgen")
    except importlib.metadata.PackageNotFoundError:
        return None


def best_setting(results: list) -> Any:
    """The setting with the highest capacity, else the highest offline throughput, else None."""
    served = [r for r in results if r.search and r.search.capacity_qps]
    if served:
        return max(served, key=lambda r: r.search.capacity_qps)
    offline = [r for r in results if r.offline and r.offline[-1].completed_qps]
    return max(offline, key=lambda r: r.offline[-1].completed_qps) if offline else None


def _setting_record(result) -> dict[str, Any]:
    out: dict[str, Any] = {"setting": result.setting, "system": result.system}
    if result.single:
        out["single_stream"] = result.single.to_record()
    if result.offline:
        out["offline"] = [p.to_record() for p in result.offline]
        out["offline_qps"] = result.offline[-1].completed_qps
    if result.offline_from:
        out["offline_bound_from"] = result.offline_from
    if result.search:
        search = result.search
        out.update(upper_qps=search.upper_qps, points=[p.to_record() for p in search.points],
                   capacity_qps=search.capacity_qps, capacity_ci95=_interval(search.capacity_interval),
                   capacity_method=search.method(), fits={name: c.describe() for name, c in search.fits.items()},
                   replicates=search.replicates if search.replicates > 1 else None,
                   warm_up_point=search.warm_up_point.to_record() if search.warm_up_point else None,
                   loadgen_valid_qps=search.loadgen_valid_qps, stopped=search.stopped,
                   slo_binding=search.slo_binding, capacity_bound_by=search.bound_by())
        out = {k: v for k, v in out.items() if v is not None and v != {}}
        if search.message:
            out["message"] = search.message
    return out


def _flat(cell, results: list, bounds: dict[str, float], percentile: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cell.scenario == "single_stream" and results and results[0].single:
        point = results[0].single
        out["single_stream_p90_ms"] = point.latency_ms.get("p90")
        if point.ttft_ms:
            out.update(single_stream_ttft_p90_ms=point.ttft_ms.get("p90"),
                       single_stream_tpot_p90_ms=point.tpot_ms.get("p90"))
    best = best_setting(results)
    if cell.scenario == "offline" and best is not None:
        out.update(offline_qps=best.offline[-1].completed_qps, offline_setting=best.setting)
        if best.offline[-1].tokens_per_s:
            out["offline_tokens_per_s"] = best.offline[-1].tokens_per_s
    if cell.scenario == "server":
        if best is not None and best.search and best.search.capacity_qps:
            search = best.search
            out.update(capacity_qps=round(search.capacity_qps, 4), capacity_setting=best.setting,
                       capacity_qps_ci95=_interval(search.capacity_interval),
                       capacity_qps_se=None if search.capacity_se is None else round(search.capacity_se, 4),
                       capacity_method=search.method(), capacity_loadgen_valid_qps=search.loadgen_valid_qps,
                       capacity_goodput_qps=search.capacity.client.get("goodput_qps"),
                       slo_binding=search.slo_binding, capacity_bound_by=search.bound_by())
        else:
            lines = [f"setting {r.setting}: {r.search.message}" for r in results if r.search and r.search.message]
            out["capacity_message"] = "; ".join(lines) or "no capacity measured"
        # The capacity is where the named percentile reaches its bound: the suite's words say what it is.
        out["slo"] = slo_text(bounds, percentile)
    return {k: v for k, v in out.items() if v is not None}


def _interval(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [round(interval[0], 4), round(interval[1], 4)]


def serving_record(cell, results: list, *, serving, setting_name: str, built, source, threads: int | None,
                   log_root: Path, relative_to: Path | None, served_tokens: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    logs = log_root.relative_to(relative_to) if relative_to and log_root.is_relative_to(relative_to) else log_root
    s = serving.serving
    block = {
        "note": NOT_A_SUBMISSION, "loadgen_version": _loadgen_version(), "scenario": cell.scenario,
        "slo_ms": serving.bounds, "percentile": serving.percentile,
        # The capacity judges the percentile as named (the rate where it reaches its bound); each point's
        # LoadGen verdict judges an early-stopping upper bound of it, and says so.
        "slo": slo_text(serving.bounds, serving.percentile),
        "point_verdicts": judged_slo_text(serving.bounds, serving.percentile),
        "capacity": ("the rate at which the share of queries over each bound reaches the percentile's allowance "
                     "(1 - p), from a logistic fit of the over-bound counts of the points near the knee, with a 95 % "
                     "interval; every point has its own LoadGen seeds (serving/search.py, capacity_fit.py)"),
        "point": {"min_duration_s": s.min_duration_s, "max_duration_s": s.max_duration_s,
                  "min_queries": serving.queries, "offline_min_queries": "max(16, 4 x the setting): no latency bound",
                  "single_stream_min_queries": "max(min_queries, 64): LoadGen's SingleStream early stopping",
                  "min_queries_from": "suite" if s.min_queries is not None else
                  f"LoadGen's early-stopping minimum at p{serving.percentile * 100:g}"},
        "search": {"precision": s.precision, "max_points": s.max_points, "knee_points": s.knee_points,
                   "replicates": s.replicates, "seed": s.seed, "upper_bound": "offline throughput, probed up to 2x where never missed"},
        "setting": setting_name, "settings": [_setting_record(r) for r in results], "goodput": GOODPUT,
        "logs": str(logs),
    }
    if served_tokens is not None:
        block["served_tokens"] = served_tokens
    extra = {"cell_id": cell.id, "dataset": cell.dataset, "task": cell.task, "scenario": cell.scenario,
             "base_model": source.base_model, "model_fingerprint": source.fingerprint,
             **({"baseline_note": source.baseline_note} if source.baseline_note else {}),
             **build_facts(built), "threads": threads, "serving": block,
             **_flat(cell, results, serving.bounds, serving.percentile)}
    return extra


def token_agreement(variant, samples, served: dict[int, bytes], *, stop_ids: set[int]) -> dict[str, Any]:
    """Served tokens against the variant's own greedy tokens for the same prompt, one prompt at a time.

    Each continuation is compared up to the reference's first special token: a fixed-length server
    bans end-of-generation tokens (llama-server's ``ignore_eos``), the reference only ignores them.
    """
    from quantbench.serving.inprocess import _as_ids, _inference_mode

    differ: dict[int, int] = {}
    for index in sorted(served):
        got = np.frombuffer(served[index], dtype=np.int32)
        with _inference_mode():
            ref = _as_ids(variant.generate(variant.prepare(samples.batch([index])), new_tokens=samples.new_tokens))[0]
        cut = next((i for i, t in enumerate(ref.tolist()) if t in stop_ids), len(ref))
        if len(got) < cut or not np.array_equal(got[:cut], ref[:cut]):
            mismatch = np.nonzero(got[:cut] != ref[:len(got[:cut])])[0] if len(got) else np.asarray([0])
            differ[index] = int(mismatch[0]) if len(mismatch) else int(min(len(got), cut))
    return {"prompts": len(served), "identical": len(served) - len(differ), "differ": len(differ),
            "first_difference_at": differ,
            "compared": "served greedy tokens against the variant's own generate of the same prompt alone, up to "
                        "its first special token"}
