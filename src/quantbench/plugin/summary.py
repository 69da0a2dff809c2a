"""The compact tables printed at the end of `pytest bench/`: one row per latency or generation cell."""

from __future__ import annotations

from typing import Any


def speedup_reference(params: dict[str, Any]) -> tuple:
    """Cells compare against fp32 on pytorch with the same model, device, batch and sequence."""
    return (params["model"], "fp32", "pytorch", params["device"], params["batch_size"], params["seq_len"])


def _key(params: dict[str, Any]) -> tuple:
    return (params["model"], params["quant"], params["backend"], params["device"], params["batch_size"],
            params["seq_len"])


def render_summary(records: list[dict[str, Any]]) -> list[str]:
    """The latency, generation and serving tables and how the rounds stopped (each where it has rows)."""
    return (render_latency_summary(records) + render_generation_summary(records) + render_serving_summary(records)
            + render_rounds(records))


def render_latency_summary(records: list[dict[str, Any]]) -> list[str]:
    rows = [r for r in records if r["test"] == "test_latency" and r.get("extra_info")]
    if not rows:
        return []
    p50 = {_key(r["params"]): r["extra_info"]["latency_ms"]["p50"] for r in rows}
    header = f"{'cell':<58} {'p50 ms':>9} {'samples/s':>10} {'mem MB':>8} {'size MB':>8} {'qlayers':>7} {'speed-up':>8}"
    lines = [header, "-" * len(header)]
    for r in rows:
        e = r["extra_info"]
        ref = p50.get(speedup_reference(r["params"]))
        speedup = f"{ref / e['latency_ms']['p50']:.2f}x" if ref else "-"
        lines.append(f"{r['cell_id']:<58} {e['latency_ms']['p50']:>9.2f} {e['throughput_samples_per_s']:>10.1f} "
                     f"{e['peak_rss_mb']:>8.1f} {e['disk_size_mb']:>8.1f} {e['quantized_layers']:>7} {speedup:>8}")
    return lines


def render_rounds(records: list[dict[str, Any]]) -> list[str]:
    """How the timed cells' rounds stopped: converged to the target, or at a cap (and how wide their
    median's interval then was), so a reader knows which medians can resolve the gate's threshold."""
    timed = [r["extra_info"] for r in records if r["test"] in ("test_latency", "test_generation")
             and (r.get("extra_info") or {}).get("rounds_stop")]
    if not timed:
        return []
    target = timed[0].get("rounds_target") or {}
    stops: dict[str, int] = {}
    for e in timed:
        stops[e["rounds_stop"]] = stops.get(e["rounds_stop"], 0) + 1
    capped = [e["rounds_precision"] for e in timed if e["rounds_stop"] != "converged" and e.get("rounds_precision")]
    line = (f"rounds: {stops.get('converged', 0)} of {len(timed)} timed cells converged to ±"
            f"{(target.get('precision') or 0):.0%} of their median at {target.get('confidence', 0.99):.0%}")
    for stop in ("time cap", "round cap"):
        if stops.get(stop):
            line += f"; {stops[stop]} stopped at the {stop}"
    if capped:
        line += f" (their medians to ±{max(capped):.0%} at worst: raise measure.max_time_s to resolve them)"
    return ["", line, *render_processes(timed)]


def render_processes(timed: list[dict[str, Any]]) -> list[str]:
    """Where the timing variance lay (measure.processes): between processes, or within one's rounds."""
    split = [e["process_variance"] for e in timed if e.get("process_variance")]
    counts = sorted({len(e["processes"]) for e in timed if e.get("processes")})
    lines = []
    if split:
        def median(values: list[float]) -> float:
            return sorted(values)[len(values) // 2]

        shown = "-".join(str(c) for c in (counts[0], counts[-1]) if c) if counts[0] != counts[-1] else str(counts[0])
        lines.append(f"processes: {len(split)} cell(s) timed in {shown} processes; of the log rounds' variance a "
                     f"median {median([s['between_share'] for s in split]):.0%} lies between processes "
                     f"(sd {median([s['between_sd'] for s in split]):.1%}) and the rest within one "
                     f"(sd {median([s['within_sd'] for s in split]):.1%})")
    one = sum(1 for e in timed if e.get("process_repetition"))
    if one:
        lines.append(f"processes: {one} generation cell(s) timed in the harness's process only "
                     "(measure.processes applies to classification cells)")
    return lines


def _generation_key(params: dict[str, Any], *, quant: str | None = None, backend: str | None = None) -> tuple:
    return (params["model"], quant or params["quant"], backend or params["backend"], params["device"],
            params["batch_size"], params["prompt_len"], params["new_tokens"])


def render_generation_summary(records: list[dict[str, Any]]) -> list[str]:
    """Generation cells; decode speed-up against fp32 pytorch of the same model, device and shape."""
    rows = [r for r in records if r["test"] == "test_generation" and r.get("extra_info")]
    if not rows:
        return []
    tpot = {_generation_key(r["params"]): r["extra_info"].get("tpot_p50_ms") for r in rows}
    header = (f"{'generation cell':<52} {'TTFT ms':>8} {'TPOT ms':>8} {'dec tok/s':>9} {'mem MB':>8} "
              f"{'size MB':>8} {'qlayers':>7} {'speed-up':>8}")
    lines = ["", header, "-" * len(header)]
    for r in rows:
        e = r["extra_info"]
        ref = tpot.get(_generation_key(r["params"], quant="fp32", backend="pytorch"))
        speedup = f"{ref / e['tpot_p50_ms']:.2f}x" if ref and e.get("tpot_p50_ms") else "-"
        lines.append(f"{r['cell_id']:<52} {e['ttft_p50_ms']:>8.1f} {e.get('tpot_p50_ms', float('nan')):>8.2f} "
                     f"{e.get('decode_tokens_per_s', float('nan')):>9.1f} {e['peak_rss_mb']:>8.1f} "
                     f"{e['disk_size_mb']:>8.1f} {e['quantized_layers']:>7} {speedup:>8}")
    return lines


def render_serving_summary(records: list[dict[str, Any]]) -> list[str]:
    """Serving cells: capacity at the SLO (or the one line saying no rate met it), offline, single-stream."""
    rows = [r for r in records if r["test"] == "test_serving" and r.get("extra_info")]
    if not rows:
        return []
    lines = ["", f"{'serving cell':<58} result (shortened LoadGen runs: not an MLPerf result)", "-" * 118]
    for r in rows:
        e = r["extra_info"]
        setting = "--parallel" if (e.get("serving") or {}).get("setting") == "parallel" else "max batch"
        if "capacity_qps" in e:
            ci = e.get("capacity_qps_ci95")
            interval = f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
            text = (f"capacity {e['capacity_qps']:.4g}{interval} QPS at {e.get('slo')} "
                    f"({setting} {e.get('capacity_setting')})" + ("; SLO not binding" if e.get("slo_binding") is False else ""))
        elif "capacity_message" in e:
            text = e["capacity_message"]
        elif "offline_qps" in e:
            text = f"offline {e['offline_qps']:.4g} QPS ({setting} {e.get('offline_setting')})"
        else:
            text = f"single-stream p90 {e.get('single_stream_p90_ms', float('nan')):.4g} ms"
        lines.append(f"{r['cell_id']:<58} {text}")
    return lines


def setup_summary(records: list[dict[str, Any]], model_setup: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What this run built and what it took from the cache (one entry per variant)."""
    variants: dict[str, dict[str, Any]] = {}
    for r in records:
        e = r.get("extra_info") or {}
        if r["test"] in ("test_latency", "test_generation") and "build_seconds" in e:
            variants.setdefault(r["cell_id"].rsplit("-bs", 1)[0], e)
    built = sum(e["build_seconds"] for e in variants.values() if not e.get("build_cached"))
    saved = sum(e.get("build_seconds_saved", 0.0) for e in variants.values() if e.get("build_cached"))
    fine_tunes = {name: s for name, s in model_setup.items()}
    saved += sum(s["seconds"] for s in fine_tunes.values() if s.get("cached"))
    built += sum(s["seconds"] for s in fine_tunes.values() if not s.get("cached"))
    return {"variants_from_cache": sum(bool(e.get("build_cached")) for e in variants.values()),
            "variants_built": sum(not e.get("build_cached") for e in variants.values()),
            "models": fine_tunes, "build_seconds": round(built, 1), "build_seconds_saved": round(saved, 1)}


_DONE_NOW = {"fine-tune": "fine-tuned now", "GGUF conversion": "converted from GGUF now"}


def render_setup(setup: dict[str, Any]) -> str:
    tuned = ", ".join(f"{name} {'from cache' if s.get('cached') else _DONE_NOW.get(s.get('what'), 'built now')} "
                      f"({s['seconds']:.0f} s "
                      f"{'saved' if s.get('cached') else 'spent'})" for name, s in setup["models"].items())
    return (f"setup: {setup['variants_built']} variant(s) built, {setup['variants_from_cache']} from the artifact "
            f"cache; {setup['build_seconds']:.1f} s building, {setup['build_seconds_saved']:.1f} s saved by the cache"
            + (f"; models: {tuned}" if tuned else ""))
