"""The result contract: what a run file holds and how to read it back.

A run file is pytest-benchmark's own JSON (``--benchmark-json``), extended, not replaced:

* ``benchmarks[]`` — one entry per finished cell. ``params`` holds the cell
  (:data:`CELL_PARAMS`), ``extra_info`` holds quantbench's figures (flat scalars named in
  :data:`METRICS` or by a batch-sensitivity pattern, see :func:`metric_spec`; their optional
  uncertainty ``M_ci95: [lo, hi]`` and ``M_se``; plus nested detail such as ``latency_ms`` or
  ``fairness``) and ``stats.data`` holds the raw per-round seconds (pytest-benchmark keeps
  them by default). Runs written before intervals existed read the same, without them.
* ``machine_info`` — pytest-benchmark's, plus the keys added by :mod:`quantbench.machine`.
* ``quantbench`` — a block of our own: schema version, suite, and the cells that failed or
  were skipped, with their reasons (pytest-benchmark records only successful benchmarks).

Non-scalar flags of quality records that reports read: ``quality_scoring`` (a string: how the
texts were scored, e.g. "each text alone (batch 1)"), ``zero_shot_at_floor`` (a bool on a
generation model's accuracy record: its zero-shot score is not above the majority rate or
chance, so it is flagged, not ranked) and ``batch_sensitivity`` (a dict; reports read the flat
``*_at_bs<N>`` figures instead). A ``test_lm_eval`` record also holds ``lm_eval_results``: lm-eval's
own results JSON for the variant (without per-document samples), which reports keep as a file.

Reports, gates and comparisons read runs only through :func:`load_run`, so the format can
grow in one place.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from quantbench.errors import QuantbenchError

SCHEMA_VERSION = 1

#: The parameters that identify a cell, in this order, in ``benchmarks[].params``. Text-
#: classification cells have ``seq_len``; text-generation cells have ``prompt_len`` and
#: ``new_tokens`` instead; serving cells (``test_serving``) have ``scenario`` (a missing parameter
#: reads as None, so keys still align).
CELL_PARAMS = ("model", "quant", "backend", "device", "batch_size", "seq_len", "prompt_len", "new_tokens", "scenario")

#: The task a record belongs to, from ``params["task"]`` (absent in runs older than tasks).
TASKS = ("text-classification", "text-generation")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    better: str  # "lower" or "higher"
    kind: str  # "timing", "throughput", "memory", "size", "accuracy", "fairness", "info", "serving"
    description: str


def _m(name: str, unit: str, better: str, kind: str, description: str) -> tuple[str, Metric]:
    return name, Metric(name, unit, better, kind, description)


#: Every scalar figure quantbench writes into ``extra_info``. Gates and reports use this
#: table for units and for which direction is better.
METRICS: dict[str, Metric] = dict(
    [
        _m("latency_p50_ms", "ms", "lower", "timing", "median latency of one batch"),
        _m("latency_p90_ms", "ms", "lower", "timing", "90th percentile latency"),
        _m("latency_p95_ms", "ms", "lower", "timing", "95th percentile latency"),
        _m("latency_p99_ms", "ms", "lower", "timing", "99th percentile latency"),
        _m("latency_mean_ms", "ms", "lower", "timing", "mean latency"),
        _m("throughput_samples_per_s", "samples/s", "higher", "throughput", "batch size / median latency"),
        _m("throughput_tokens_per_s", "tokens/s", "higher", "throughput", "batch size x sequence length / median latency"),
        _m("peak_rss_mb", "MB", "lower", "memory", "peak resident memory of the cell over the baseline taken before its variant was built"),
        _m("cuda_peak_allocated_mb", "MB", "lower", "memory", "CUDA peak allocated memory"),
        _m("cuda_peak_reserved_mb", "MB", "lower", "memory", "CUDA peak reserved memory"),
        _m("disk_size_mb", "MB", "lower", "size", "bytes of the saved artifact (safetensors or ONNX with external data)"),
        _m("param_count", "", "lower", "info", "parameters of the checkpoint before quantization"),
        _m("build_seconds", "s", "lower", "info", "time to build or load the variant"),
        _m("quantized_layers", "", "higher", "info", "quantized Linear modules or quantized ONNX ops: proof of quantization"),
        _m("accuracy", "", "higher", "accuracy", "accuracy on the held-out evaluation split"),
        _m("f1_macro", "", "higher", "accuracy", "macro-averaged F1"),
        _m("precision_macro", "", "higher", "accuracy", "macro-averaged precision"),
        _m("recall_macro", "", "higher", "accuracy", "macro-averaged recall"),
        _m("agreement_with_fp32", "", "higher", "accuracy", "share of predictions identical to the fp32 variant of the same model and backend"),
        _m("mean_abs_prob_diff", "", "lower", "accuracy", "mean absolute difference of class probabilities against fp32"),
        _m("accuracy_delta_pts", "pts", "higher", "accuracy", "accuracy minus fp32 accuracy, in percentage points"),
        _m("predictions_changed_vs_fp32", "", "lower", "info", "predictions that differ from fp32's on the same texts"),
        _m("balanced_accuracy", "", "higher", "accuracy", "mean of the per-class recalls: chance is 1 / classes"),
        _m("majority_rate", "", "higher", "info",
           "share of the most frequent label: the floor a constant predictor reaches"),
        _m("dp_difference", "", "lower", "fairness", "demographic parity difference (fairlearn)"),
        _m("eo_difference", "", "lower", "fairness", "equalized odds difference (fairlearn)"),
        _m("worst_group_accuracy", "", "higher", "fairness", "accuracy of the worst-off group"),
        _m("data_dp_difference", "", "lower", "fairness", "demographic parity difference on the dataset's sensitive column"),
        _m("data_eo_difference", "", "lower", "fairness", "equalized odds difference on the dataset's sensitive column"),
        _m("data_worst_group_accuracy", "", "higher", "fairness", "worst group accuracy on the dataset's sensitive column"),
        # -- text generation: one generate() call of batch x new_tokens per round (test_generation)
        _m("ttft_p50_ms", "ms", "lower", "timing", "time to first token (prefill plus the first token), median"),
        _m("ttft_p90_ms", "ms", "lower", "timing", "time to first token, 90th percentile"),
        _m("ttft_p95_ms", "ms", "lower", "timing", "time to first token, 95th percentile"),
        _m("ttft_p99_ms", "ms", "lower", "timing", "time to first token, 99th percentile"),
        _m("tpot_p50_ms", "ms", "lower", "timing", "decode time per output token (after the first), median"),
        _m("tpot_p90_ms", "ms", "lower", "timing", "decode time per output token, 90th percentile"),
        _m("tpot_p95_ms", "ms", "lower", "timing", "decode time per output token, 95th percentile"),
        _m("tpot_p99_ms", "ms", "lower", "timing", "decode time per output token, 99th percentile"),
        _m("itl_p50_ms", "ms", "lower", "timing", "inter-token latency: one decode step's time, median over every step"),
        _m("itl_p99_ms", "ms", "lower", "timing", "inter-token latency, 99th percentile over every decode step"),
        _m("decode_tokens_per_s", "tokens/s", "higher", "throughput",
           "batch x (new tokens - 1) / median decode time (prefill excluded)"),
        _m("total_tokens_per_s", "tokens/s", "higher", "throughput", "batch x new tokens / median generate latency"),
        _m("prefill_tokens_per_s", "tokens/s", "higher", "throughput", "batch x prompt tokens / median time to first token"),
        # -- language-model quality: once per variant on held-out text (test_perplexity)
        _m("perplexity", "", "lower", "accuracy", "token perplexity on held-out text (each text scored alone, from BOS)"),
        _m("bits_per_byte", "bits", "lower", "accuracy", "summed negative log-likelihood / (ln 2 x UTF-8 bytes): tokenizer-independent"),
        _m("perplexity_delta_pct", "%", "lower", "accuracy", "perplexity change against the fp32 variant, in percent"),
        _m("kl_divergence", "nats", "lower", "accuracy", "mean KL(fp32 || variant) of next-token distributions"),
        _m("kl_divergence_median", "nats", "lower", "accuracy", "median of the per-token KL divergence"),
        _m("kl_divergence_p99", "nats", "lower", "accuracy", "99th percentile of the per-token KL divergence"),
        _m("kl_divergence_max", "nats", "lower", "accuracy", "largest per-token KL divergence"),
        _m("delta_p_mean", "", "higher", "accuracy",
           "mean over tokens of p_variant(true token) - p_fp32(true token)"),
        _m("delta_p_rms", "", "lower", "accuracy", "root mean square of the per-token Δp"),
        _m("ppl_ratio", "", "lower", "accuracy", "perplexity / fp32 perplexity on the same texts"),
        _m("ln_ppl_ratio", "", "lower", "accuracy", "ln(perplexity / fp32 perplexity): mean NLL difference per token"),
        _m("top1_agreement", "", "higher", "accuracy", "share of positions whose most likely next token matches fp32"),
        _m("continuation_agreement", "", "higher", "accuracy",
           "greedy continuations: mean share of tokens identical to fp32's before the first difference"),
        _m("continuation_exact_match", "", "higher", "accuracy", "share of greedy continuations identical to fp32's"),
        # -- efficiency against this machine's measured limits, and cost (not gated by default)
        _m("flops_per_call", "FLOP", "lower", "efficiency", "FLOPs of one timed call, counted from the model config"),
        _m("achieved_gflops", "GFLOP/s", "higher", "efficiency", "FLOPs per call / median latency"),
        _m("compute_share", "", "higher", "efficiency", "achieved GFLOP/s / this machine's measured peak for the cell's arithmetic"),
        _m("arithmetic_intensity", "FLOP/byte", "higher", "efficiency", "FLOPs per call / bytes of weights read"),
        _m("prefill_gflops", "GFLOP/s", "higher", "efficiency", "prefill FLOPs / median time to first token"),
        _m("prefill_compute_share", "", "higher", "efficiency", "prefill GFLOP/s / the measured peak"),
        _m("decode_gflops", "GFLOP/s", "higher", "efficiency", "decode-step FLOPs / median decode time per token"),
        _m("decode_compute_share", "", "higher", "efficiency", "decode GFLOP/s / the measured peak"),
        _m("decode_arithmetic_intensity", "FLOP/byte", "higher", "efficiency", "decode-step FLOPs / bytes read per step"),
        _m("decode_bytes_per_token", "bytes", "lower", "efficiency", "weights plus KV cache read per decode step, per generated token"),
        _m("decode_bandwidth_gbs", "GB/s", "higher", "efficiency", "bytes read per decode step / median decode time per token"),
        _m("bandwidth_share", "", "higher", "efficiency", "decode GB/s / this machine's measured memory bandwidth"),
        _m("cost_per_million_inferences", "USD", "lower", "cost", "price per hour / 3600 / samples per second x 10^6"),
        _m("cost_per_million_output_tokens", "USD", "lower", "cost", "price per hour / 3600 / total tokens per second x 10^6"),
        # -- serving under load (test_serving, MLPerf LoadGen; shortened runs, not an MLPerf submission)
        _m("capacity_qps", "QPS", "higher", "serving",
           "Poisson arrival rate at which the SLO's percentile reaches its bound (fitted over the points near "
           "the knee, with capacity_qps_ci95), best over the batcher settings"),
        _m("capacity_goodput_qps", "QPS", "higher", "serving",
           "requests per second that met every SLO limit, at the capacity point"),
        _m("offline_qps", "QPS", "higher", "serving",
           "LoadGen Offline: completed samples per second, best over the batcher settings"),
        _m("offline_tokens_per_s", "tokens/s", "higher", "serving",
           "LoadGen Offline: completed output tokens per second (generation), at the best setting"),
        _m("single_stream_p90_ms", "ms", "lower", "serving",
           "LoadGen SingleStream: 90th percentile latency, one query at a time (generation: end to end)"),
        _m("single_stream_ttft_p90_ms", "ms", "lower", "serving",
           "LoadGen SingleStream: 90th percentile time to first token, one query at a time"),
        _m("single_stream_tpot_p90_ms", "ms", "lower", "serving",
           "LoadGen SingleStream: 90th percentile time per output token, one query at a time"),
        _m("flip_rate", "", "lower", "fairness", "share of counterfactual pairs whose label flips when only the person term changes"),
        _m("score_gap_mean", "", "lower", "fairness", "mean absolute positive-score gap between counterfactual pairs"),
        _m("score_gap_max", "", "lower", "fairness", "largest absolute positive-score gap between counterfactual pairs"),
    ]
)

#: Batch-sensitivity figures, one set per batch size N, named by pattern: (pattern, unit, better,
#: kind, description with {n}). Quality is scored unpadded (each text alone, or exact-length buckets);
#: these say what scoring the same texts in padded batches of N, as served, gives instead.
_BATCH_PATTERNS = (
    (r"perplexity_at_bs(\d+)", "", "lower", "accuracy", "perplexity with the texts scored in padded batches of {n}"),
    (r"perplexity_at_bs(\d+)_delta_pct", "%", "lower", "accuracy",
     "perplexity in batches of {n} against the unpadded figure (each text alone or exact-length buckets), in percent"),
    (r"accuracy_at_bs(\d+)", "", "higher", "accuracy", "accuracy with the texts scored in padded batches of {n}"),
    (r"accuracy_at_bs(\d+)_delta_pts", "pts", "higher", "accuracy",
     "accuracy in batches of {n} minus the unpadded accuracy (each text alone or exact-length buckets), in points"),
    (r"predictions_changed_at_bs(\d+)", "", "lower", "info",
     "predictions that change when the texts are scored in padded batches of {n} instead of unpadded"),
)
_BATCH_RES = tuple((re.compile(pattern), rest) for pattern, *rest in _BATCH_PATTERNS)


#: lm-evaluation-harness figures, one set per task and metric (test_lm_eval): ``lm_eval.<task>.<metric>``,
#: with ``.<filter>`` appended when lm-eval's filter is not "none" (lm-eval's own key is
#: ``"<metric>,<filter>"``), and ``..._delta`` for the paired change against fp32 on the same documents.
#: lm-eval's stderr is the figure's ``_se``. Which direction is better follows lm-eval's own
#: ``higher_is_better`` (tests/unit/test_lmeval_figures.py checks this table against its registry).
LM_EVAL_PREFIX = "lm_eval."
LM_EVAL_LOWER_IS_BETTER = frozenset({"perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "ter",
                                     "brier_score"})
_LM_EVAL_RE = re.compile(r"lm_eval\.(?P<task>[^.]+)\.(?P<metric>[^.]+?)(?:\.(?P<filter>[^.]+?))?(?P<delta>_delta)?")
#: Keys beside an lm-eval figure that are not figures themselves: McNemar's exact test against fp32
#: (``<figure>_delta_mcnemar_p``, and ``<figure>_delta_discordant``: ``{"gained": n, "lost": n}``;
#: quantbench/lmeval/figures.py) and an accuracy's majority floor (``<figure>_floor``, the majority
#: rate, and ``<figure>_at_floor``, a bool; quantbench/lmeval/floor.py).
LM_EVAL_MCNEMAR_P, LM_EVAL_DISCORDANT = "_mcnemar_p", "_discordant"
LM_EVAL_FLOOR, LM_EVAL_AT_FLOOR = "_floor", "_at_floor"
_NOT_FIGURE_SUFFIXES = ("_se", "_ci95", LM_EVAL_MCNEMAR_P, LM_EVAL_DISCORDANT, LM_EVAL_FLOOR, LM_EVAL_AT_FLOOR)


def lm_eval_name(task: str, metric: str, filter_name: str = "none") -> str:
    """The flat figure name of lm-eval's ``results[task]["<metric>,<filter>"]``."""
    return f"{LM_EVAL_PREFIX}{task}.{metric}" + ("" if filter_name == "none" else f".{filter_name}")


def lm_eval_budget(key: str) -> tuple[str, bool] | None:
    """A quality-budget key on an lm-eval figure's change against fp32: ``<figure>_delta_min`` (the
    change must stay at or above the limit) or ``<figure>_delta_max`` (at or below it). Returns
    (the delta figure's name, True for an upper limit), or None for any other key."""
    for suffix, at_most in (("_min", False), ("_max", True)):
        if key.endswith(suffix):
            figure = key[: -len(suffix)]
            if figure.endswith("_delta") and _lm_eval_spec(figure) is not None:
                return figure, at_most
    return None


def _lm_eval_spec(name: str) -> Metric | None:
    match = _LM_EVAL_RE.fullmatch(name)
    if match is None or name.endswith(_NOT_FIGURE_SUFFIXES):
        return None
    task, metric, filter_name = match.group("task", "metric", "filter")
    better = "lower" if metric in LM_EVAL_LOWER_IS_BETTER else "higher"
    what = f"lm-evaluation-harness {metric} on task {task}" + (f" (filter {filter_name})" if filter_name else "")
    if match.group("delta"):
        return Metric(name, "", better, "accuracy", f"{what} minus fp32's, paired on the same documents")
    return Metric(name, "", better, "accuracy", f"{what}; ± is lm-eval's own standard error")


@functools.lru_cache(maxsize=1024)
def metric_spec(name: str) -> Metric | None:
    """The :class:`Metric` of a flat figure: one of :data:`METRICS`, a batch-sensitivity
    figure named by pattern (``perplexity_at_bs8``, ``accuracy_at_bs32_delta_pts``...), or an
    lm-evaluation-harness figure (``lm_eval.<task>.<metric>``, see :data:`LM_EVAL_PREFIX`)."""
    if name in METRICS:
        return METRICS[name]
    for regex, (unit, better, kind, description) in _BATCH_RES:
        match = regex.fullmatch(name)
        if match:
            return Metric(name, unit, better, kind, description.format(n=int(match.group(1))))
    if name.startswith(LM_EVAL_PREFIX):
        return _lm_eval_spec(name)
    return None


def batch_size_of(name: str) -> int | None:
    """N of a batch-sensitivity figure's name, else None."""
    for regex, _ in _BATCH_RES:
        match = regex.fullmatch(name)
        if match:
            return int(match.group(1))
    return None


#: Suffixes of a figure's uncertainty in ``extra_info``: ``M_ci95`` is ``[lo, hi]``, a 95 %
#: interval in M's units; ``M_se`` one standard error (given for figures averaged over tokens).
CI_SUFFIX, SE_SUFFIX = "_ci95", "_se"
#: The normal quantile of a two-sided 95 % interval: se = (hi - lo) / (2 x Z95).
Z95 = 1.96

#: Non-scalar flags of quality records (see the module docstring).
QUALITY_SCORING, ZERO_SHOT_AT_FLOOR = "quality_scoring", "zero_shot_at_floor"
#: The nested copy of lm-eval's results JSON in a ``test_lm_eval`` record.
LM_EVAL_RESULTS = "lm_eval_results"

#: Keys of ``extra_info['latency_ms']`` and the flat metric each one becomes.
_LATENCY_KEYS = {"p50": "latency_p50_ms", "p90": "latency_p90_ms", "p95": "latency_p95_ms",
                 "p99": "latency_p99_ms", "mean": "latency_mean_ms"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_values(extra_info: dict[str, Any]) -> dict[str, float]:
    """The known scalar metrics of one benchmark's ``extra_info``: :data:`METRICS` in their
    order, then the figures named by pattern (batch sensitivity, lm-eval) in the record's order."""
    values = {name: float(extra_info[name]) for name in METRICS if _is_number(extra_info.get(name))}
    for name, value in extra_info.items():
        if name not in values and _is_number(value) and metric_spec(str(name)) is not None:
            values[name] = float(value)
    for key, name in _LATENCY_KEYS.items():
        latency = extra_info.get("latency_ms") or {}
        if name not in values and _is_number(latency.get(key)):
            values[name] = float(latency[key])
    return values


def metric_intervals(extra_info: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """``{metric: (lo, hi)}`` from the record's ``M_ci95`` keys. Malformed ones (not two finite
    numbers, lo > hi, or no known metric M) are left out: a figure without an interval is
    shown and judged as before intervals existed."""
    out = {}
    for key, value in extra_info.items():
        if not (isinstance(key, str) and key.endswith(CI_SUFFIX)):
            continue
        name = key[: -len(CI_SUFFIX)]
        if metric_spec(name) is None or not isinstance(value, (list, tuple)) or len(value) != 2:
            continue
        lo, hi = value
        if _is_number(lo) and _is_number(hi) and lo <= hi:
            out[name] = (float(lo), float(hi))
    return out


def metric_std_errors(extra_info: dict[str, Any]) -> dict[str, float]:
    """``{metric: one standard error}``: ``M_se`` where given (finite, >= 0), else the 95 %
    interval's width / (2 x 1.96). The second is exact for a normal interval and an
    approximation for a Wilson or bootstrap one, which may be asymmetric."""
    out = {name: (hi - lo) / (2 * Z95) for name, (lo, hi) in metric_intervals(extra_info).items()}
    for key, value in extra_info.items():
        if isinstance(key, str) and key.endswith(SE_SUFFIX) and _is_number(value) and value >= 0:
            name = key[: -len(SE_SUFFIX)]
            if metric_spec(name) is not None:
                out[name] = float(value)
    return out


def given_std_errors(extra_info: dict[str, Any]) -> dict[str, float]:
    """Only the ``M_se`` the record states (reports show these as ``value ± se``)."""
    return {key[: -len(SE_SUFFIX)]: float(value) for key, value in extra_info.items()
            if isinstance(key, str) and key.endswith(SE_SUFFIX) and _is_number(value) and value >= 0
            and metric_spec(key[: -len(SE_SUFFIX)]) is not None}


@dataclass
class BenchmarkRecord:
    """One finished cell of one benchmark function (``test_latency``, ``test_accuracy``...)."""

    test: str
    params: dict[str, Any]
    metrics: dict[str, float]
    samples_s: list[float]
    extra_info: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """95 % intervals of this record's figures (see :func:`metric_intervals`)."""
        return metric_intervals(self.extra_info)

    @property
    def std_errors(self) -> dict[str, float]:
        """One standard error per figure that has an interval (see :func:`metric_std_errors`)."""
        return metric_std_errors(self.extra_info)

    @property
    def key(self) -> tuple:
        """Aligns the same cell across runs: benchmark function plus the cell parameters."""
        return (self.test, *(self.params.get(p) for p in CELL_PARAMS))

    @property
    def cell_id(self) -> str:
        return str(self.raw.get("param") or "-".join(str(self.params[p]) for p in CELL_PARAMS if p in self.params))


@dataclass
class Run:
    path: Path | None
    machine_info: dict[str, Any]
    commit_info: dict[str, Any]
    datetime: str | None
    records: list[BenchmarkRecord]
    failed: list[dict[str, Any]]  # {"test", "cell_id", "params", "reason"}
    skipped: list[dict[str, Any]]
    suite: dict[str, Any]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def by_key(self) -> dict[tuple, BenchmarkRecord]:
        return {record.key: record for record in self.records}


def _test_name(bench: dict[str, Any]) -> str:
    name = str(bench.get("name", ""))
    return name.split("[", 1)[0]


def parse_run(data: dict[str, Any], path: Path | None = None) -> Run:
    where = str(path) if path else "run"
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise QuantbenchError(f"{where}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    records = []
    for bench in data["benchmarks"]:
        stats = bench.get("stats") or {}
        extra = bench.get("extra_info") or {}
        records.append(
            BenchmarkRecord(
                test=_test_name(bench),
                params=dict(bench.get("params") or {}),
                metrics=metric_values(extra),
                samples_s=[float(x) for x in stats.get("data") or []],
                extra_info=extra,
                raw=bench,
            )
        )
    block = data.get("quantbench") or {}
    return Run(
        path=path,
        machine_info=data.get("machine_info") or {},
        commit_info=data.get("commit_info") or {},
        datetime=data.get("datetime"),
        records=records,
        failed=list(block.get("failed") or []),
        skipped=list(block.get("skipped") or []),
        suite=dict(block.get("suite") or {}),
        raw=data,
    )


def load_run(path: str | Path) -> Run:
    """Read a run file written by ``pytest bench/ --benchmark-json``; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QuantbenchError(f"{path}: cannot read run file ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QuantbenchError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_run(data, path)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    return [load_run(p) for p in paths]
