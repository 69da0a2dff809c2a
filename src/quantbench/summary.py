"""The compact table printed at the end of `pytest bench/`: one row per latency cell."""

from __future__ import annotations

from typing import Any


def speedup_reference(params: dict[str, Any]) -> tuple:
    """Cells compare against fp32 on pytorch with the same model, device, batch and sequence."""
    return (params["model"], "fp32", "pytorch", params["device"], params["batch_size"], params["seq_len"])


def _key(params: dict[str, Any]) -> tuple:
    return (params["model"], params["quant"], params["backend"], params["device"], params["batch_size"],
            params["seq_len"])


def render_summary(records: list[dict[str, Any]]) -> list[str]:
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
