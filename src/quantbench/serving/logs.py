"""LoadGen's logs read back: the verdict and its reasons, rates and latency percentiles, responses.

The detail log (``mlperf_log_detail.txt``) holds one ``:::MLLOG {json}`` line per fact
(``result_validity``, ``result_min_duration_met``, ``result_99.00_percentile_latency_ns``...): the
figures come from there. The summary (``mlperf_log_summary.txt``) adds LoadGen's recommendations
("Reduce target QPS to improve latency."), which are part of an INVALID verdict's reasons. In
AccuracyOnly mode ``mlperf_log_accuracy.json`` holds every response as hex bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantbench.errors import QuantbenchError
from quantbench.serving.early_stopping import point_figures

SUMMARY, DETAIL, ACCURACY = "mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_accuracy.json"
#: LoadGen's percentile labels -> the record's keys.
PERCENTILES = {"50.00": "p50", "90.00": "p90", "95.00": "p95", "97.00": "p97", "99.00": "p99", "99.90": "p99.9"}
#: The verdict's flags, and what each one means when it is false.
CONSTRAINTS = {
    "result_perf_constraints_met": "the latency bound was not met at the percentile",
    "result_min_duration_met": "the minimum duration was not reached",
    "result_min_queries_met": "the minimum query count was not reached",
    "early_stopping_met": "early stopping was not satisfied",
}


def read_detail(path: Path) -> dict[str, Any]:
    """``{key: value}`` of every MLLOG line (the last one wins), plus ``errors``: LoadGen's error messages."""
    facts: dict[str, Any] = {"errors": []}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise QuantbenchError(f"{path}: cannot read LoadGen's detail log ({exc.strerror or exc})") from None
    for line in lines:
        if not line.startswith(":::MLLOG "):
            continue
        try:
            entry = json.loads(line[len(":::MLLOG "):])
        except json.JSONDecodeError:
            continue
        facts[entry.get("key")] = entry.get("value")
        if (entry.get("metadata") or {}).get("is_error"):
            facts["errors"].append(f"{entry.get('key')}: {entry.get('value')}")
    return facts


def read_recommendations(path: Path) -> list[str]:
    """The lines of the summary's ``Recommendations:`` block."""
    if not path.is_file():
        return []
    out, inside = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Recommendations:"):
            inside = True
            continue
        if inside:
            if not line.startswith(" * "):
                break
            out.append(line[3:].strip())
    return out


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value) / 1e6, 4)


def _percentiles(facts: dict[str, Any], pattern: str) -> dict[str, float]:
    """``{p50: ms, ...}`` from keys like ``result_{label}_percentile_latency_ns`` (``pattern`` has ``{label}``)."""
    return {name: _ms(facts[pattern.format(label=label)]) for label, name in PERCENTILES.items()
            if facts.get(pattern.format(label=label)) is not None}


@dataclass
class PointResult:
    """One LoadGen test read back, with the SUT's own view of it (``client``)."""

    scenario: str
    valid: bool
    reasons: list[str]
    completed_qps: float | None
    latency_ms: dict[str, float]
    ttft_ms: dict[str, float] = field(default_factory=dict)
    tpot_ms: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float | None = None
    scheduled_qps: float | None = None
    query_count: int | None = None
    overlatency_queries: int | None = None
    early_stopping: str = ""
    target_qps: float | None = None
    percentile: float | None = None  # the Server bound's percentile, as LoadGen applied it
    client: dict[str, Any] = field(default_factory=dict)
    wall_s: float | None = None
    log_dir: str | None = None
    seed: int | None = None  # LoadGen's schedule, sample-index and QSL seeds (the capacity search sets it)
    met: bool | None = None  # the share over each bound within the percentile's allowance (search.meets)
    replicate: int | None = None  # which independently started system served it (search.find_capacity)

    @property
    def verdict(self) -> str:
        return "VALID" if self.valid else "INVALID"

    def to_record(self) -> dict[str, Any]:
        out = {"scenario": self.scenario, "target_qps": self.target_qps, "seed": self.seed, "meets_slo": self.met,
               "replicate": self.replicate,
               "achieved_qps": self.completed_qps,
               "scheduled_qps": self.scheduled_qps, "verdict": self.verdict, "reasons": self.reasons,
               "latency_ms": self.latency_ms, "query_count": self.query_count,
               "overlatency_queries": self.overlatency_queries, "early_stopping": self.early_stopping,
               # What the verdict judged: the share of queries over the bound, and its 99 % upper bound
               # against the share the percentile allows (serving/early_stopping.py).
               **(point_figures(self.query_count, self.overlatency_queries, self.percentile)
                  if self.scenario == "server" and self.percentile and not self.ttft_ms else {}),
               "client": self.client, "wall_s": None if self.wall_s is None else round(self.wall_s, 3),
               "logs": self.log_dir}
        if self.ttft_ms or self.tpot_ms:
            out.update(ttft_ms=self.ttft_ms, tpot_ms=self.tpot_ms, tokens_per_s=self.tokens_per_s)
        return {k: v for k, v in out.items() if v is not None}


def read_point(log_dir: Path, *, scenario: str, target_qps: float | None = None, wall_s: float | None = None,
               client: dict[str, Any] | None = None, relative_to: Path | None = None) -> PointResult:
    """The result of the LoadGen test whose logs are in ``log_dir``."""
    facts = read_detail(log_dir / DETAIL)
    if "result_validity" not in facts:
        raise QuantbenchError(f"{log_dir / DETAIL}: LoadGen wrote no result (the test did not finish)")
    reasons = [why for key, why in CONSTRAINTS.items() if facts.get(key) is False]
    early = " ".join(" ".join(str(facts[k]).split()) for k in ("early_stopping_result", "early_stopping_ttft_result",
                                                                "early_stopping_tpot_result") if facts.get(k))
    if facts.get("early_stopping_met") is False and early:
        reasons = [r if r != CONSTRAINTS["early_stopping_met"] else f"{r}: {early.removeprefix('* ')}"
                   for r in reasons]
    reasons += read_recommendations(log_dir / SUMMARY)
    if facts.get("result_invalid_reason"):
        reasons.append(str(facts["result_invalid_reason"]).strip())
    reasons += [f"LoadGen error: {e}" for e in facts["errors"]]
    qps = next((facts[k] for k in ("result_completed_samples_per_sec", "result_samples_per_second",
                                   "result_qps_with_loadgen_overhead") if facts.get(k) is not None), None)
    tokens = next((facts[k] for k in ("result_completed_tokens_per_second", "result_tokens_per_second",
                                      "result_token_throughput") if facts.get(k) is not None), None)
    latency = _percentiles(facts, "result_{label}_percentile_latency_ns")
    if facts.get("result_mean_latency_ns") is not None:
        latency["mean"] = _ms(facts["result_mean_latency_ns"])
    where = log_dir.relative_to(relative_to) if relative_to and log_dir.is_relative_to(relative_to) else log_dir
    return PointResult(
        scenario=scenario, valid=facts["result_validity"] == "VALID", reasons=list(dict.fromkeys(reasons)),
        completed_qps=None if qps is None else round(float(qps), 4), latency_ms=latency,
        ttft_ms=_percentiles(facts, "result_first_token_{label}_percentile_latency_ns"),
        tpot_ms=_percentiles(facts, "result_time_per_output_token_{label}_percentile_ns"),
        tokens_per_s=None if tokens is None else round(float(tokens), 3),
        scheduled_qps=facts.get("result_scheduled_samples_per_sec"), query_count=facts.get("result_query_count"),
        overlatency_queries=facts.get("result_overlatency_query_count"), early_stopping=early,
        target_qps=target_qps, client=client or {}, wall_s=wall_s, log_dir=str(where),
        percentile=facts.get("effective_target_latency_percentile") if scenario == "server" else None)


_HEX = re.compile(r"^[0-9A-Fa-f]*$")


def read_accuracy(log_dir: Path) -> dict[int, bytes]:
    """AccuracyOnly responses: ``{sample index: response bytes}`` (one response per sample)."""
    path = log_dir / ACCURACY
    try:
        entries = json.loads(path.read_text(encoding="utf-8") or "[]")
    except (OSError, json.JSONDecodeError) as exc:
        raise QuantbenchError(f"{path}: cannot read LoadGen's accuracy log ({exc})") from None
    out = {}
    for entry in entries:
        data = str(entry.get("data", ""))
        if not _HEX.match(data):
            raise QuantbenchError(f"{path}: response of sample {entry.get('qsl_idx')} is not hex")
        out[int(entry["qsl_idx"])] = bytes.fromhex(data)
    return out
