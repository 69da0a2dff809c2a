"""What a report says, as plain data: table rows, speed-ups, the Pareto front, recommendations.

Pure functions over a :class:`~quantbench.results.Run`; no HTML here, so the HTML page,
``report.json`` and the model cards all tell the same story.

A sweep writes two kinds of records for one variant (model x quant x backend x device):
*performance* records, one per batch size and sequence length (``test_latency``) or per batch
size, prompt length and new tokens (``test_generation``), and *quality* records
(``test_accuracy``, ``test_fairness``, ``test_perplexity``) measured once per variant. A table
row is one performance record joined with its variant's quality figures.

A generation model's speed-up is its decode speed (TPOT p50) against fp32's, and its
recommendation uses the suite's quality budget (KL, ΔPPL) instead of the 99 %-accuracy rule.
Every rule is judged on the measured figure, and its interval says how sure the verdict is
(:mod:`quantbench.reports.rules` states each one). A speed-up carries an interval from the rounds'
own 99 % intervals; variants whose speed-up intervals overlap are a tie, and a tie goes to quality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from quantbench.reports import rules
from quantbench.reports.lm_eval_view import floor_mark
from quantbench.reports.rules import ACCURACY_KEEP, FAIRNESS_GUARDS  # noqa: F401 (re-exported)
from quantbench.reports.uncertainty import fmt_figure
from quantbench.results import (
    LM_EVAL_PREFIX,
    QUALITY_SCORING,
    ZERO_SHOT_AT_FLOOR,
    BenchmarkRecord,
    Run,
    given_std_errors,
    metric_spec,
)

#: Metric kinds that make a record a per-batch "performance" record.
PERF_KINDS = frozenset({"timing", "throughput"})
DEFAULT_FAIRNESS_TOLERANCE = 0.02
#: The recommendation's rule for generation models when a run names none (quantbench.suite has the same).
DEFAULT_QUALITY_BUDGET = {"kl_divergence": 0.05, "perplexity_delta_pct": 3.0}
REFERENCE_QUANT = "fp32"
REFERENCE_BACKEND = "pytorch"
#: Serving cells (bench/test_serving.py): kept per variant, apart from the performance rows.
SERVING_TEST = "test_serving"
RECOMMEND_BY = ("speed", "capacity")


@dataclass(frozen=True, order=True)
class Variant:
    """A built model: the unit a model card describes and a recommendation names."""

    model: str
    quant: str
    backend: str
    device: str
    # Only set in merged runs where benchmarks come from several machines.
    machine: str = ""

    @property
    def label(self) -> str:
        parts = [self.model, self.quant, self.backend, self.device]
        return " · ".join(parts + ([self.machine] if self.machine else []))

    @property
    def is_fp32(self) -> bool:
        return self.quant == REFERENCE_QUANT


@dataclass
class Row:
    """One performance cell joined with its variant's quality figures."""

    variant: Variant
    test: str
    cell_id: str
    batch_size: Any
    seq_len: Any  # the sequence length, or a generation cell's prompt length
    dataset: str | None
    metrics: dict[str, float]
    speedup: float | None = None
    reference: str | None = None  # cell_id of the fp32 row the speed-up divides by
    new_tokens: Any = None  # generation cells only
    rounds_precision: float | None = None  # relative half-width of the timed figure's 99 % interval
    speedup_ci: tuple[float, float] | None = None  # 99 %, from both rows' rounds
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95 %, of quality figures
    std_errors: dict[str, float] = field(default_factory=dict)  # the ones the records state (``M_se``)
    marks: dict[str, str] = field(default_factory=dict)  # text after a figure: an lm-eval accuracy's floor flag

    @property
    def shape(self) -> tuple:
        return (self.test, self.batch_size, self.seq_len, self.new_tokens)


@dataclass
class VariantSummary:
    variant: Variant
    rows: list[Row] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    quality_ci: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95 % interval per quality figure
    quality_se: dict[str, float] = field(default_factory=dict)  # stated standard errors (``M_se``)
    quality_extra: dict[str, Any] = field(default_factory=dict)  # merged extra_info of quality records
    scoring: dict[str, str] = field(default_factory=dict)  # quality test -> how its texts were scored
    perf_extra: dict[str, Any] = field(default_factory=dict)  # extra_info of the first perf record
    speedup: float | None = None  # geometric mean over the variant's cells
    speedup_ci: tuple[float, float] | None = None  # 99 %, from the rounds of this run (not between runs)
    accuracy_delta_pts: float | None = None
    reference: Variant | None = None
    on_pareto_front: bool = False
    serving: list[BenchmarkRecord] = field(default_factory=list)  # its test_serving records

    @property
    def server_record(self) -> BenchmarkRecord | None:
        return next((r for r in self.serving if r.params.get("scenario") == "server"), None)

    @property
    def capacity_qps(self) -> float | None:
        """The capacity at the SLO (best over the batcher settings), when a server cell measured one."""
        record = self.server_record
        return None if record is None else record.metrics.get("capacity_qps")

    @property
    def capacity_ci(self) -> tuple[float, float] | None:
        """The capacity's 95 % interval (the knee's fit), when the search could make one."""
        record = self.server_record
        value = None if record is None else record.extra_info.get("capacity_qps_ci95")
        return (float(value[0]), float(value[1])) if value and len(value) == 2 else None

    @property
    def accuracy(self) -> float | None:
        return self.quality.get("accuracy")

    @property
    def dataset(self) -> str | None:
        return self.quality_extra.get("dataset") or self.perf_extra.get("dataset")

    @property
    def is_generation(self) -> bool:
        return any(r.test == "test_generation" for r in self.rows) or "perplexity" in self.quality or \
            any(r.params.get("task") == "text-generation" for r in self.serving)

    @property
    def zero_shot_at_floor(self) -> bool:
        """The zero-shot score is no better than the majority rate: flagged, not ranked."""
        return self.quality_extra.get(ZERO_SHOT_AT_FLOOR) is True

    @property
    def quality_scoring(self) -> str | None:
        """How the texts were scored: one phrase, or one per quality test where they differ."""
        distinct = list(dict.fromkeys(self.scoring.values()))
        if len(distinct) <= 1:
            return distinct[0] if distinct else None
        return "; ".join(f"{test.removeprefix('test_')}: {how}" for test, how in self.scoring.items())

    def add_quality(self, record: BenchmarkRecord) -> None:
        """Merge a quality record; each figure keeps the interval of the record it came from."""
        intervals, errors = record.intervals, given_std_errors(record.extra_info)
        self.quality.update(record.metrics)
        for name in record.metrics:
            for own, mine in ((intervals, self.quality_ci), (errors, self.quality_se)):
                if name in own:
                    mine[name] = own[name]
                else:
                    mine.pop(name, None)
        self.quality_extra.update(record.extra_info)
        if record.extra_info.get(QUALITY_SCORING) not in (None, ""):
            self.scoring[record.test] = str(record.extra_info[QUALITY_SCORING])

    def metric(self, name: str) -> float | None:
        """A variant-level figure: quality first, else the worst (max) over its cells."""
        if name in self.quality:
            return self.quality[name]
        values = [r.metrics[name] for r in self.rows if name in r.metrics]
        return max(values) if values else None


@dataclass
class Recommendation:
    device: str
    model: str
    status: str  # "ok", "no-accuracy", "none"
    variant: VariantSummary | None
    message: str
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (variant label, why)
    # (variant label, note): kept only thanks to an interval, or a check set aside (zero-shot floor)
    notes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Analysis:
    run: Run
    rows: list[Row]
    variants: list[VariantSummary]
    recommendations: list[Recommendation]
    fairness_tolerance: float
    quality_budget: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_QUALITY_BUDGET))
    recommend_by: str = "speed"  # "capacity": ranked by capacity at the SLO (a suite with a server scenario)

    @property
    def has_accuracy(self) -> bool:
        return any(v.accuracy is not None for v in self.variants)


def is_perf_record(record: BenchmarkRecord) -> bool:
    return any(metric_spec(m).kind in PERF_KINDS for m in record.metrics)


def record_machine(record: BenchmarkRecord) -> str:
    """The machine a record came from, when a merge kept it per benchmark (a sweep's Ray node by its name,
    since two nodes can share a host name)."""
    machine = record.extra_info.get("machine")
    if not isinstance(machine, dict):
        return ""
    return str((machine.get("ray") or {}).get("node") or machine.get("node") or "")


def variant_of(record: BenchmarkRecord) -> Variant:
    p = record.params
    return Variant(str(p.get("model")), str(p.get("quant")), str(p.get("backend")),
                   str(p.get("device")), record_machine(record))


def _reference_for(variant: Variant, candidates: dict[Variant, Any]) -> Variant | None:
    """fp32 on pytorch for the same model/device (and machine); else fp32 on the same backend."""
    for backend in (REFERENCE_BACKEND, variant.backend):
        ref = Variant(variant.model, REFERENCE_QUANT, backend, variant.device, variant.machine)
        if ref in candidates:
            return ref
    return None


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which points no other point beats on both axes (both maximised)."""
    flags = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(points) if j != i
        )
        flags.append(not dominated)
    return flags


def _latency(metrics: dict[str, float]) -> float | None:
    """What a speed-up divides: decode time per token for generation, else the batch latency."""
    return metrics.get("tpot_p50_ms", metrics.get("latency_p50_ms", metrics.get("latency_mean_ms")))


def _row(variant: Variant, record: BenchmarkRecord, metrics: dict[str, float]) -> Row:
    p = record.params
    precision = record.extra_info.get("rounds_precision")
    return Row(variant, record.test, record.cell_id, p.get("batch_size"), p.get("seq_len", p.get("prompt_len")),
               record.extra_info.get("dataset"), metrics, new_tokens=p.get("new_tokens"),
               rounds_precision=float(precision) if isinstance(precision, (int, float)) and precision >= 0 else None)


def analyse(run: Run) -> Analysis:
    summaries: dict[Variant, VariantSummary] = {}
    rows: list[Row] = []
    quality_records = []
    for record in run.records:
        variant = variant_of(record)
        summary = summaries.setdefault(variant, VariantSummary(variant))
        if record.test == SERVING_TEST:
            summary.serving.append(record)
            continue
        if is_perf_record(record):
            row = _row(variant, record, dict(record.metrics))
            rows.append(row)
            summary.rows.append(row)
            summary.perf_extra = summary.perf_extra or record.extra_info
        else:
            quality_records.append(record)
            summary.add_quality(record)
    # A variant measured only for quality still gets a table row, so nothing disappears.
    for record in quality_records:
        summary = summaries[variant_of(record)]
        if not summary.rows:
            row = _row(summary.variant, record, {})
            rows.append(row)
            summary.rows.append(row)
    for summary in summaries.values():
        for row in summary.rows:
            for name, value in summary.quality.items():
                if name not in row.metrics:
                    row.metrics[name] = value
                    if name in summary.quality_ci:
                        row.intervals[name] = summary.quality_ci[name]
                    if name in summary.quality_se:
                        row.std_errors[name] = summary.quality_se[name]
                    if name.startswith(LM_EVAL_PREFIX):
                        row.marks[name] = floor_mark(summary.quality_extra, name)

    _speedups(summaries)
    _accuracy_deltas(summaries)
    # A variant whose zero-shot score is at the floor is flagged, not ranked on it.
    scored = [s for s in summaries.values() if s.speedup is not None and s.accuracy_delta_pts is not None
              and not (s.is_generation and s.zero_shot_at_floor)]
    for summary, front in zip(scored, pareto_front([(s.speedup, s.accuracy_delta_pts) for s in scored])):
        summary.on_pareto_front = front

    tolerance = float(run.suite.get("fairness_tolerance", DEFAULT_FAIRNESS_TOLERANCE))
    budget = dict(run.suite.get("quality_budget") or DEFAULT_QUALITY_BUDGET)
    variants = sorted(summaries.values(), key=lambda s: s.variant)
    by = run.suite.get("recommend_by") if run.suite.get("recommend_by") in RECOMMEND_BY else "speed"
    return Analysis(run, rows, variants, recommend(variants, tolerance=tolerance, budget=budget, by=by), tolerance,
                    budget, by)


def _speedups(summaries: dict[Variant, VariantSummary]) -> None:
    for summary in summaries.values():
        ref_variant = _reference_for(summary.variant, summaries)
        summary.reference = ref_variant
        if ref_variant is None:
            continue
        ref_rows = {r.shape: r for r in summaries[ref_variant].rows}
        ratios, half_widths = [], []
        for row in summary.rows:
            ref = ref_rows.get(row.shape)
            mine, theirs = _latency(row.metrics), _latency(ref.metrics) if ref else None
            if mine and theirs:
                row.speedup, row.reference = theirs / mine, ref.cell_id
                ratios.append(row.speedup)
                if row.rounds_precision is not None and ref.rounds_precision is not None:
                    # log-scale half-widths of two independent medians add in quadrature
                    half = math.hypot(math.log1p(row.rounds_precision), math.log1p(ref.rounds_precision))
                    row.speedup_ci = (row.speedup * math.exp(-half), row.speedup * math.exp(half))
                    half_widths.append(half)
        summary.speedup = _geomean(ratios)
        if summary.speedup and half_widths and len(half_widths) == len(ratios):
            half = math.sqrt(sum(h * h for h in half_widths)) / len(half_widths)  # of the mean of the logs
            summary.speedup_ci = (summary.speedup * math.exp(-half), summary.speedup * math.exp(half))


def _accuracy_deltas(summaries: dict[Variant, VariantSummary]) -> None:
    for summary in summaries.values():
        if "accuracy_delta_pts" in summary.quality:
            summary.accuracy_delta_pts = summary.quality["accuracy_delta_pts"]
            continue
        ref = summaries.get(summary.reference) if summary.reference else None
        if summary.accuracy is not None and ref is not None and ref.accuracy is not None:
            summary.accuracy_delta_pts = (summary.accuracy - ref.accuracy) * 100


def _keeps_accuracy(summary: VariantSummary, ref: VariantSummary | None) -> tuple[bool, str]:
    check = rules.check_accuracy(summary, ref)
    return check.ok, check.why


def _keeps_fairness(summary: VariantSummary, ref: VariantSummary | None, tolerance: float) -> tuple[bool, str]:
    check = rules.check_fairness(summary, ref, tolerance)
    return check.ok, check.why


def _within_budget(summary: VariantSummary, budget: dict[str, float]) -> tuple[bool, str]:
    """A generation variant's quality against the suite's budget (fp32 is within it by definition)."""
    check = rules.check_budget(summary, budget)
    return check.ok, check.why


def with_interval(summary: VariantSummary, name: str, spec: str = ".4g") -> str:
    """A quality figure for a sentence: ``0.884 [0.862, 0.903]``, ``285.8 ± 9.1``, or the value alone."""
    value = summary.quality.get(name)
    if value is None:
        return "—"
    if name in summary.quality_se or name in summary.quality_ci:  # rounded to its uncertainty
        return fmt_figure(name, value, summary.quality_ci.get(name), summary.quality_se.get(name))
    return format(value, spec)


def _quality_note(summary: VariantSummary, budget: dict[str, float] | None = None) -> str:
    if summary.is_generation:
        lm_eval = [found[0] for found in map(rules.lm_eval_budget, budget or ()) if found]
        return (f"KL {with_interval(summary, 'kl_divergence')}, "
                f"ΔPPL {with_interval(summary, 'perplexity_delta_pct', '+.2f')} %"
                + "".join(f", {name} {with_interval(summary, name, '+.4f')}" for name in lm_eval))
    return f"accuracy {with_interval(summary, 'accuracy', '.4f')}"


def fmt_float(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def _capacity_text(summary: VariantSummary) -> str:
    """``12.5 QPS at TTFT p90 ≤ 500 ms and TPOT p90 ≤ 50 ms (--parallel 4)``."""
    extra = summary.server_record.extra_info
    block = extra.get("serving") or {}
    setting = extra.get("capacity_setting")
    named = f"--parallel {setting}" if block.get("setting") == "parallel" else f"max batch {setting}"
    interval = f" [{summary.capacity_ci[0]:.4g}, {summary.capacity_ci[1]:.4g}]" if summary.capacity_ci else ""
    return f"{summary.capacity_qps:.4g}{interval} QPS at {extra.get('slo', 'the SLO')} ({named})"


def recommend(variants: list[VariantSummary], *, tolerance: float,
              budget: dict[str, float] | None = None, by: str = "speed") -> list[Recommendation]:
    """Per device (and model): the fastest variant keeping fp32's quality and fairness.

    ``by="capacity"`` ranks by capacity at the SLO (the serving cells' ``capacity_qps``) instead of
    speed-up: the variant that serves the most queries per second within the latency bound, among
    those within the quality budget.

    Quality means 99 % of fp32 accuracy for a classifier and the quality budget for a
    generation model (whose speed is its decode speed). A difference inside a figure's 95 %
    interval is no difference: a variant is rejected only when the whole interval is on the
    wrong side of a limit (see :mod:`quantbench.reports.rules`); one kept only thanks to its
    interval, or whose zero-shot figures were set aside at the majority floor, gets a note.
    """
    budget = DEFAULT_QUALITY_BUDGET if budget is None else budget
    by_variant = {s.variant: s for s in variants}
    groups: dict[tuple[str, str], list[VariantSummary]] = {}
    for summary in variants:
        groups.setdefault((summary.variant.device, summary.variant.model), []).append(summary)
    out = []
    for (device, model), members in sorted(groups.items()):
        rank = (lambda s: -(s.capacity_qps or 0)) if by == "capacity" else (lambda s: -(s.speedup or 0))
        fastest_first = sorted(members, key=rank)
        generation = any(s.is_generation for s in members)
        if not generation and not any(s.accuracy is not None for s in members):
            top = fastest_first[0] if fastest_first and fastest_first[0].speedup else None
            speed = f" By speed alone the fastest is {top.variant.label} ({top.speedup:.2f}x fp32)." if top else ""
            if by == "capacity":
                top = fastest_first[0] if fastest_first and fastest_first[0].capacity_qps else None
                speed = f" By capacity alone the highest is {top.variant.label} ({_capacity_text(top)})." if top else ""
            out.append(Recommendation(device, model, "no-accuracy", None,
                                      "No accuracy data in this run, so no variant can be recommended: "
                                      "the accuracy and fairness conditions cannot be checked." + speed))
            continue
        rejected, notes, eligible = [], [], []
        for summary in fastest_first:
            ref = by_variant.get(summary.reference) if summary.reference else None
            label = summary.variant.label
            if by == "capacity" and summary.capacity_qps is None:
                record = summary.server_record
                why = (record.extra_info.get("capacity_message") if record is not None else None) or \
                    "no capacity at the SLO measured (no server cell)"
                rejected.append((label, why))
                continue
            if by != "capacity" and summary.speedup is None:
                rejected.append((label, "no speed-up over fp32 measured"))
                continue
            flag = rules.floor_note(summary, ref)
            if flag:  # stands whatever else happens to the variant
                notes.append((label, flag))
            checks = [rules.check_budget(summary, budget, ref) if generation else rules.check_accuracy(summary, ref)]
            if checks[0].ok:
                checks.append(rules.check_fairness(summary, ref, tolerance))
            failed = next((c for c in checks if not c.ok), None)
            if failed:
                rejected.append((label, failed.why))
                continue
            notes += [(label, n) for c in checks for n in c.notes]
            eligible.append((summary, checks + ([rules.Check(True, notes=(flag,))] if flag else [])))
        rule = ("stays within the quality budget (" + ", ".join(f"{k} {v:g}" for k, v in budget.items()) + ")"
                if generation else "keeps 99% of fp32 accuracy")
        if not eligible:
            out.append(Recommendation(device, model, "none", None,
                                      f"No variant {rule} without worsening fairness.", rejected, notes))
            continue
        chosen, chosen_checks, decided = _choose(eligible, generation=generation, by=by)
        speed = "decode speed" if generation else "speed"
        fairness = (f"fairness within {tolerance:g} of fp32" if all(c.judged for c in chosen_checks)
                    else "fairness not judged (zero-shot at the majority floor)")
        own = [n for c in chosen_checks for n in c.notes]
        interval = (f" [{chosen.speedup_ci[0]:.2f}, {chosen.speedup_ci[1]:.2f}]" if chosen.speedup_ci else "")
        how = (f"serves {_capacity_text(chosen)}" if by == "capacity" else
               f"{chosen.speedup:.2f}×{interval} the fp32 {speed}")
        out.append(Recommendation(
            device, model, "ok", chosen,
            f"use {chosen.variant.quant} on {chosen.variant.backend}: {how}, "
            f"{_quality_note(chosen, budget)}, {fairness}. {decided}" + (" Note: " + "; ".join(own) + "." if own else ""),
            rejected, notes))
    return out


def _interval(summary: VariantSummary, by: str) -> tuple[float, float] | None:
    return summary.capacity_ci if by == "capacity" else summary.speedup_ci


def _tied(a: VariantSummary, b: VariantSummary, by: str = "speed") -> bool:
    """Speed-ups (or capacities) whose intervals overlap cannot be told apart in this run."""
    x, y = _interval(a, by), _interval(b, by)
    return bool(x and y and x[0] <= y[1] and y[0] <= x[1])


def _quality_rank(summary: VariantSummary, generation: bool) -> float:
    """Higher is better: a classifier's accuracy, a generation model's negative KL against fp32."""
    value = summary.quality.get("kl_divergence") if generation else summary.accuracy
    if value is None:
        return -math.inf
    return -value if generation else value


def _choose(eligible: list[tuple[VariantSummary, list]], *, generation: bool, by: str
            ) -> tuple[VariantSummary, list, str]:
    """The recommended variant among those inside every rule on their point estimates (fastest first), and
    the sentence that says which rule decided: variants whose intervals are inside too come before the
    uncertain ones, and the fp32 reference itself (1.00x, inside by definition) comes last; then speed
    (or capacity); a speed tie (overlapping speed-up intervals) goes to quality."""
    def is_reference(summary: VariantSummary) -> bool:
        return summary.reference is None or summary.reference == summary.variant

    certain = [e for e in eligible if not is_reference(e[0]) and not any(c.uncertain for c in e[1])]
    uncertain = [e for e in eligible if not is_reference(e[0]) and any(c.uncertain for c in e[1])]
    pool = certain or uncertain or eligible
    first = pool[0]
    measure, most = ("capacity", "highest") if by == "capacity" else ("speed", "fastest")
    if pool is certain:
        decided = f"Decided by {measure}: the {most} variant inside every rule with its intervals inside too."
    elif pool is uncertain:
        decided = (f"Decided by {measure}: the {most} variant inside every rule on its point estimates; no variant "
                   "has every interval inside too.")
    else:
        decided = "No quantized variant is inside every rule: the fp32 reference stands."
    def ranked(summary: VariantSummary) -> float:
        return (summary.capacity_qps if by == "capacity" else summary.speedup) or 0.0

    passed_over = [e[0].variant.label for e in uncertain if pool is certain and ranked(e[0]) > ranked(first[0])]
    if passed_over:
        decided += (f" Ranked after it: {', '.join(passed_over)}, {'higher' if by == 'capacity' else 'faster'} but "
                    "inside only on the point estimate (an interval reaches past a limit).")
    tie = [e for e in pool[1:] if _tied(first[0], e[0], by)]
    if tie:
        best = max([first, *tie], key=lambda e: (_quality_rank(e[0], generation), ranked(e[0])))
        figure = "KL" if generation else "accuracy"
        if by == "capacity":
            others = ", ".join(f"{e[0].variant.label} {e[0].capacity_qps:.4g} QPS [{e[0].capacity_ci[0]:.4g}, "
                               f"{e[0].capacity_ci[1]:.4g}]" for e in [first, *tie] if e is not best)
            source = "the capacity intervals overlap, from each search's fit at the knee"
        else:
            others = ", ".join(f"{e[0].variant.label} {e[0].speedup:.2f}× [{e[0].speedup_ci[0]:.2f}, "
                               f"{e[0].speedup_ci[1]:.2f}]" for e in [first, *tie] if e is not best)
            source = "the speed-up intervals overlap, from this run's rounds"
        decided = (f"Tied on {measure} with {others} ({source}); "
                   f"the tie goes to quality first: the best {figure}."
                   + (decided[decided.index(" Ranked after it"):] if passed_over else ""))
        first = best
    return first[0], first[1], decided


def short_labels(variants: list[Variant]) -> dict[Variant, str]:
    """Labels without the parts every variant shares (one model, one device: just quant/backend)."""
    fields = ("model", "quant", "backend", "device", "machine")
    varying = [f for f in fields if len({getattr(v, f) for v in variants}) > 1] or ["quant", "backend"]
    if "quant" in varying or "backend" in varying:
        varying = [f for f in fields if f in varying or f in ("quant", "backend")]
    return {v: " · ".join(str(getattr(v, f)) for f in varying if getattr(v, f)) for v in variants}
