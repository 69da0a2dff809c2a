"""Align two runs cell by cell (``BenchmarkRecord.key``) and judge each gated metric."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from quantbench.gate import result as R
from quantbench.gate.drift import (MIN_CELLS_FOR_SPREAD, Correction, MachineDrift, between_run_sigma, cell_ratio,
                                   machine_drift)
from quantbench.gate.machine import machine_differences
from quantbench.gate.processes import process_evidence, run_level_sigma, runs_of
from quantbench.gate.policy import (ABSOLUTE, DRIFT_CORRECTED_KINDS, INTERVAL_KINDS, SAMPLED_KINDS, Policy, Rule,
                                    change_of)
from quantbench.gate.significance import Difference, difference
from quantbench.gate.stats import Evidence, compare_samples
from quantbench.results import CELL_PARAMS, METRICS, BenchmarkRecord, Run, metric_spec

# Float noise guard, so a change equal to the threshold does not flip on the 16th digit.
_EPS = 1e-12
#: The power at which a cell's minimum detectable effect is given (the conventional 80 %).
MDE_POWER = 0.8


def _display(test: str, cell_id: str) -> str:
    return f"{test}[{cell_id}]"


def _entry_key(entry: dict[str, Any]) -> tuple:
    params = entry.get("params") or {}
    return (str(entry.get("test", "")).split("[", 1)[0], *(params.get(p) for p in CELL_PARAMS))


def _index(run: Run, label: str, warnings: list[str]) -> dict[tuple, BenchmarkRecord]:
    index: dict[tuple, BenchmarkRecord] = {}
    for record in run.records:
        if record.key in index:
            warnings.append(f"{label}: cell {_display(record.test, record.cell_id)} appears more than "
                            "once; the last one is compared")
        index[record.key] = record
    return index


def _moves_with_samples(metric: str) -> bool:
    """Latency rises when the rounds get slower; throughput (batch / median) falls."""
    return metric_spec(metric).kind == "timing"


#: Metrics that are the median of the rounds (or batch / median): the samples' ratio CI is
#: theirs. A tail percentile gets the p-value but no CI, as the CI is not about the tail.
MEDIAN_BASED = frozenset({"latency_p50_ms", "throughput_samples_per_s", "throughput_tokens_per_s", "ttft_p50_ms",
                          "tpot_p50_ms", "decode_tokens_per_s", "total_tokens_per_s", "prefill_tokens_per_s"})
#: Generation metrics computed from the step timer, not from the whole generate call that
#: pytest-benchmark timed: (block in extra_info, its sample lists in order of preference). Decode is
#: tested on every step's time when recorded, prefill on its own samples (the first step of each
#: generate round plus the prefill-only rounds).
_ROUND_BLOCKS = {"ttft": ("ttft_ms", ("raw_s",)), "prefill": ("ttft_ms", ("raw_s",)),
                 "tpot": ("tpot_ms", ("steps_s", "raw_s")), "decode": ("tpot_ms", ("steps_s", "raw_s")),
                 "itl": ("tpot_ms", ("steps_s",))}


def _block_samples(record: BenchmarkRecord, block: str, key: str) -> list[float] | None:
    raw = (record.extra_info.get(block) or {}).get(key)
    return [float(x) for x in raw] if isinstance(raw, list) and raw else None


def paired_samples(base: BenchmarkRecord, cur: BenchmarkRecord, metric: str) -> tuple[str, list[float], list[float]]:
    """(source name, baseline seconds, current seconds) that ``metric`` is computed from, the same
    kind on both sides (a run without per-step times is compared per round)."""
    block, keys = _ROUND_BLOCKS.get(metric.split("_", 1)[0], (None, ()))
    for key in keys:
        b, c = _block_samples(base, block, key), _block_samples(cur, block, key)
        if b and c:
            return f"{block}.{key}", b, c
    return "rounds", base.samples_s, cur.samples_s


def _shift_ci(metric: str, ratio_ci: tuple[float, float] | None) -> tuple[float, float] | None:
    """An interval of the rounds' time ratio, as a relative change in ``metric``'s direction."""
    if not ratio_ci:
        return None
    low, high = ratio_ci
    if _moves_with_samples(metric):
        return (low - 1, high - 1)
    return (1 / high - 1 if high else math.inf, 1 / low - 1 if low else math.inf)


def widened_interval(evidence: Evidence, noise: float | None, *, alpha: float
                     ) -> tuple[tuple[float, float] | None, float | None]:
    """The evidence's ratio interval with this pair's between-run noise added, and the minimum detectable
    effect: the smallest slowdown (relative) that a cell with this much uncertainty shows at ``alpha``
    with :data:`MDE_POWER` power.

    The rounds' Hodges-Lehmann interval knows one process per side; between two runs whole processes
    differ (gate/drift.py), so the noise (a standard deviation of log-ratios) is added in quadrature to
    each side of the interval. A process-level interval (gate/processes.py) knows the processes; what
    is added to it is only the noise its processes do not explain (``gate_runs``), with its t quantiles."""
    if not evidence.ci or not evidence.ratio:
        return None, None
    center = math.log(evidence.ratio)
    if evidence.level == "processes" and evidence.se_log is not None and evidence.df:
        se = math.hypot(evidence.se_log, noise or 0.0)
        quantile = float(scipy_stats.t.ppf(1 - alpha / 2, evidence.df))
        widened = (math.exp(center - quantile * se), math.exp(center + quantile * se))
        return widened, math.expm1((quantile + float(scipy_stats.t.ppf(MDE_POWER, evidence.df))) * se)
    low, high = evidence.ci
    if not (low > 0 and math.isfinite(high)):
        return evidence.ci, None
    z = float(scipy_stats.norm.ppf(1 - alpha / 2))
    down, up = center - math.log(low), math.log(high) - center
    extra = z * (noise or 0.0)
    widened = (math.exp(center - math.hypot(down, extra)), math.exp(center + math.hypot(up, extra)))
    se = math.hypot((down + up) / 2 / z, noise or 0.0)
    return widened, math.expm1((z + float(scipy_stats.norm.ppf(MDE_POWER))) * se)


def _mde_of(metric: str, mde: float | None) -> float | None:
    """The rounds' detectable slowdown as a worsening of ``metric`` (a rise of a time, a drop of a rate)."""
    if mde is None:
        return None
    return mde if _moves_with_samples(metric) else 1 - 1 / (1 + mde)


def _interval_clears(ci: tuple[float, float], *, better: str, threshold: float, worse: bool) -> bool:
    """Is every change in the interval past the threshold, in the direction found?"""
    worse_low, worse_high = (ci if better == "lower" else (-ci[1], -ci[0]))
    return worse_low > threshold if worse else -worse_high > threshold


def _interval_reaches_worse(ci: tuple[float, float], *, better: str, threshold: float) -> bool:
    """Does the interval hold a change worse than the threshold (one it cannot rule out)?"""
    worse_high = ci[1] if better == "lower" else -ci[0]
    return worse_high > threshold + _EPS


def _pct(value: float) -> str:
    return "unbounded" if not math.isfinite(value) else f"{value:+.1%}"


#: How a resident-memory figure was measured: the process it came from and the allocator's settings.
MEMORY_METHOD = ("memory_isolation", "memory_allocator")


def _memory_method_change(metric: str, base: BenchmarkRecord, cur: BenchmarkRecord) -> str:
    """Why two RSS figures cannot be compared ("" when they can): measured another way, they differ
    by what the method keeps (with glibc's adaptive thresholds PyTorch cells read 20-30 MB higher)."""
    if "rss" not in metric:
        return ""
    before = {k: base.extra_info.get(k) for k in MEMORY_METHOD}
    after = {k: cur.extra_info.get(k) for k in MEMORY_METHOD}
    if before == after:
        return ""
    moved = "; ".join(f"{k}: {before[k] or 'not recorded'} -> {after[k] or 'not recorded'}"
                      for k in MEMORY_METHOD if before[k] != after[k])
    return f"memory was measured another way ({moved}): record a new baseline to judge it"


def judge_metric(*, metric: str, rule: Rule, base: BenchmarkRecord, cur: BenchmarkRecord,
                 policy: Policy, evidence: Evidence | None, cell: str,
                 drift: Correction | None = None, noise: float | None = None) -> R.Row:
    """The verdict for one metric of one cell present on both sides.

    With ``drift``, the change is judged on the current value with the cell's own machine factor divided
    out (``evidence`` is then computed the same way); the row still shows the measured values and the
    raw change. ``noise`` (this pair's between-run noise, gate/drift.py) widens a timing interval: the
    threshold is the policy's, and a change the widened interval cannot settle is unresolved.
    """
    b, c = base.metrics[metric], cur.metrics[metric]
    judged = drift.corrected(metric, c) if drift else c
    by_processes = evidence is not None and evidence.level == "processes" and evidence.ratio is not None
    if by_processes:  # the processes' estimate (each divided by its reference, or raw: gate/processes.py)
        judged = b * evidence.ratio if _moves_with_samples(metric) else b / evidence.ratio
    better = rule.better(metric)
    threshold = rule.threshold
    change = change_of(b, judged, rule.mode)
    worse_by = change if better == "lower" else -change
    big_enough = abs(judged - b) >= rule.min_delta
    worse = worse_by > threshold + _EPS and big_enough
    improved = -worse_by > threshold + _EPS and big_enough
    common = dict(cell=cell, key=base.key, metric=metric, baseline=b, current=c, change=change,
                  mode=rule.mode, threshold=threshold, better=better)
    if drift:
        common.update(raw_change=change_of(b, c, rule.mode), drift=drift.factor)
    changed = _memory_method_change(metric, base, cur)
    if changed:  # not judged: the two figures were measured another way
        outcome = R.FAIL if policy.on_unresolved == "fail" else R.WARN
        return R.Row(verdict=R.UNRESOLVED, outcome=outcome, **{**common, "note": changed})
    if evidence is None and rule.significance and metric_spec(metric).kind in INTERVAL_KINDS:
        diff = difference(base, cur, metric)
        if drift:  # judged on the drift-corrected value: its se scales with it
            diff = Difference(judged - b, diff.se_baseline,
                              None if diff.se_current is None or not c else diff.se_current * judged / c)
        return _judge_quality(diff, worse=worse, improved=improved, common=common)
    if evidence is None:  # a single figure (accuracy, memory, size...): the threshold decides
        if worse:
            return R.Row(verdict=R.REGRESSION, outcome=R.FAIL, **common)
        if improved:
            return R.Row(verdict=R.IMPROVEMENT, outcome=R.OK, **common)
        return R.Row(verdict=R.PASS, outcome=R.OK, **common)

    if not evidence.sufficient:
        outcome = R.FAIL if policy.on_insufficient == "fail" else R.WARN
        return R.Row(verdict=R.INSUFFICIENT, outcome=outcome, **{**common, "note": evidence.reason})
    widened, rounds_mde = widened_interval(evidence, noise, alpha=policy.alpha)
    ci = _shift_ci(metric, widened)
    common.update(mde=_mde_of(metric, rounds_mde), noise=noise,
                  evidence=(f"processes: {evidence.method}, {evidence.n_baseline} vs {evidence.n_current}"
                            if by_processes else "rounds"))
    stats = dict(p_value=evidence.p_value, ci=ci if metric in MEDIAN_BASED else None)
    # The samples must move the same way as the metric (a p95 rise while the rounds got
    # faster overall is not evidence of a slowdown).
    metric_up = (evidence.ratio > 1) == _moves_with_samples(metric)
    samples_worse = metric_up == (better == "lower")
    significant = evidence.significant(alpha=policy.alpha)
    if (worse or improved) and by_processes:
        # Process-level samples carry the noise between processes, and the pair's remaining noise is added
        # to their interval: a change past the threshold whose interval excludes no change at all is a
        # regression (asv's rule: large by the threshold, real by the test).
        if samples_worse == worse and ci is not None and _interval_clears(ci, better=better, threshold=0.0,
                                                                            worse=worse):
            verdict = R.REGRESSION if worse else R.IMPROVEMENT
            return R.Row(verdict=verdict, outcome=R.FAIL if worse else R.OK, **common, **stats)
    elif worse or improved:
        confirmed = significant and samples_worse == worse
        # Rounds alone know one process per side: the whole interval of their shift, between-run noise
        # included, must clear the threshold, as a shift that is real in one process each may be the
        # processes, not the code (two clean runs on the 2-core VM moved single cells by up to 70 %). For
        # a tail percentile this asks that the rounds as a whole moved that far: a p95 that doubled
        # because a burst hit a few rounds is the machine (measured here: +109 % p95, +39 % p50).
        clears = ci is None or _interval_clears(ci, better=better, threshold=threshold, worse=worse)
        if confirmed and clears:
            verdict = R.REGRESSION if worse else R.IMPROVEMENT
            return R.Row(verdict=verdict, outcome=R.FAIL if worse else R.OK, **common, **stats)
    if ci is not None and _interval_reaches_worse(ci, better=better, threshold=threshold):
        # Not shown, and not ruled out. That is no pass: the cell needs more rounds or processes.
        mde = common["mde"]
        noise_text = ("" if not noise else f" with the runs' noise its processes do not carry ({noise:.0%})"
                      if by_processes else f" with this pair's between-run noise ({noise:.0%} per cell)")
        of_what = (f"of the {evidence.n_baseline} vs {evidence.n_current} processes' ratio ({evidence.method})"
                   if by_processes else "of the shift of the rounds")
        note = (f"the {1 - policy.alpha:.0%} interval {of_what}{noise_text}, "
                f"[{_pct(ci[0])}, {_pct(ci[1])}], reaches past the {threshold:.0%} threshold without clearing it"
                + (f"; this cell detects a change of {mde:.0%} or more (alpha {policy.alpha:g}, "
                   f"{MDE_POWER:.0%} power)" if mde is not None else ""))
        outcome = R.FAIL if policy.on_unresolved == "fail" else R.WARN
        return R.Row(verdict=R.UNRESOLVED, outcome=outcome, **{**common, "note": note}, **stats)
    if (worse or improved) and by_processes:
        why = ("the processes moved the other way" if samples_worse != worse
               else f"the {1 - policy.alpha:.0%} interval of the processes' ratio includes no change")
        return R.Row(verdict=R.NOISE, outcome=R.OK, **{**common, "note": why}, **stats)
    if worse or improved:
        why = (f"p={evidence.p_value:.3g} >= alpha {policy.alpha:g}" if not significant
               else "the rounds moved the other way" if not confirmed
               else f"the {1 - policy.alpha:.0%} interval does not clear the threshold" if metric in MEDIAN_BASED
               else f"the rounds as a whole did not move past the threshold (the {1 - policy.alpha:.0%} "
                    "interval of their shift does not clear it): a tail-only change")
        return R.Row(verdict=R.NOISE, outcome=R.OK, **{**common, "note": why}, **stats)
    return R.Row(verdict=R.PASS, outcome=R.OK, **common, **stats)


def _judge_quality(diff: Difference, *, worse: bool, improved: bool, common: dict) -> R.Row:
    """A quality change under ``significance: true``: past the threshold *and* past the 95 % interval
    of the difference. Without an interval on both sides, the threshold alone, and the row says so."""
    if diff.half_width is None:
        note = f"no interval on the {diff.missing}: threshold alone"
        verdict = R.REGRESSION if worse else R.IMPROVEMENT if improved else R.PASS
        return R.Row(verdict=verdict, outcome=R.FAIL if worse else R.OK, **{**common, "note": note})
    half = diff.half_width
    scale = 1.0 if common["mode"] == ABSOLUTE else abs(common["baseline"]) or math.inf
    stats = {"p_value": diff.p_value, "ci": ((diff.difference - half) / scale, (diff.difference + half) / scale)}
    if (worse or improved) and not diff.significant:
        note = (f"inside the 95 % interval of the difference (|{diff.difference:.4g}| <= 1.96 x "
                f"sqrt(se_b² + se_c²) = {half:.4g}): not significant")
        return R.Row(verdict=R.NOISE, outcome=R.OK, **{**common, "note": note}, **stats)
    verdict = R.REGRESSION if worse else R.IMPROVEMENT if improved else R.PASS
    return R.Row(verdict=verdict, outcome=R.FAIL if worse else R.OK, **common, **stats)


def _machine_drift(base_index: dict, cur_index: dict, policy: Policy
                   ) -> tuple[MachineDrift | None, dict[str, list[str]]]:
    """The machine's drift over the cells both runs timed, and why any cell is left out of it."""
    ratios: dict[tuple, float] = {}
    left_out: dict[str, list[str]] = {}
    if not policy.drift_correction:
        return None, left_out
    for key, base in base_index.items():
        cur = cur_index.get(key)
        if cur is None or not base.samples_s or not cur.samples_s:
            continue
        found = cell_ratio(base, cur)
        if isinstance(found, float):
            ratios[key] = found
        elif found:
            left_out.setdefault(found, []).append(_display(base.test, base.cell_id))
    return machine_drift(ratios), left_out


def timing_noise(base_index: dict, cur_index: dict, drift: MachineDrift | None, policy: Policy
                 ) -> dict[str, float | None]:
    """Per timing metric, this pair's between-run noise (a standard deviation of log-ratios; None
    where too few cells hold it to tell; see gate/drift.py)."""
    if not policy.noise_floor:
        return {}
    noise: dict[str, float | None] = {}
    gated = {m for rule in policy.rules if not rule.skip for m in rule.metrics}
    for metric in (m for m, spec in METRICS.items() if spec.kind in SAMPLED_KINDS and m in gated):
        ratios = []
        for key, base in base_index.items():
            cur = cur_index.get(key)
            if cur is None or metric not in base.metrics or metric not in cur.metrics or not base.metrics[metric]:
                continue
            correction = drift.correction(key) if drift else None
            current = correction.corrected(metric, cur.metrics[metric]) if correction else cur.metrics[metric]
            if current > 0 and base.metrics[metric] > 0:
                ratios.append(current / base.metrics[metric])
        if ratios:
            noise[metric] = between_run_sigma(ratios)
    return noise


def _process_noise(evidence: Evidence, residual: float | None, run_sigma: float | None,
                   base: BenchmarkRecord, cur: BenchmarkRecord) -> float | None:
    """What a process-level interval still lacks: a stored baseline's residual between-run noise, or in
    an interleaved job compared unpaired, the run-level noise of the mean of each side's runs (a paired
    test's block differences already hold it)."""
    if evidence.method.startswith("unpaired"):
        return residual
    if evidence.method.startswith("interleaved, unpaired") and run_sigma:
        return run_sigma * math.sqrt(1 / runs_of(base) + 1 / runs_of(cur))
    return None


def residual_noise(noise: dict[str, float | None], evidence) -> dict[str, float]:
    """The between-run noise that stored-baseline process samples do not already carry.

    ``noise`` is how far one cell's figure moved between the two runs (over cells); a process-level
    interval already holds the processes' own spread (its standard error). What is left, in quadrature,
    is the noise of the runs themselves (the machine's state over minutes), added to each unpaired
    process interval. A paired (interleaved) comparison needs none: each block is its own pair of runs.
    """
    unpaired = [e.se_log for e in evidence if e.method.startswith("unpaired") and e.se_log is not None]
    if not unpaired:
        return {}
    typical = float(np.median(np.square(unpaired)))
    return {m: math.sqrt(max(0.0, n * n - typical)) for m, n in noise.items() if n is not None}


def drift_warnings(drift: MachineDrift | None, left_out: dict[str, list[str]],
                   noise: dict[str, float | None]) -> list[str]:
    """What the machine did, this pair's between-run noise, and why any timing was judged raw."""
    lines = [drift.describe()] if drift else []
    known = {m: n for m, n in noise.items() if n is not None}
    if known:
        lines.append("between-run noise of this pair (how far one cell moves with nothing changed, a standard "
                     "deviation; it widens every timing interval): " + ", ".join(f"{m} {n:.0%}" for m, n in known.items()))
    unknown = [m for m, n in noise.items() if n is None]
    if unknown:
        lines.append(f"between-run noise not estimated for {', '.join(unknown)} (fewer than {MIN_CELLS_FOR_SPREAD} "
                     "cells): a cell judged on its rounds then knows only one process per run")
    for reason, cells in left_out.items():
        example = cells[0] + (f" and {len(cells) - 1} more" if len(cells) > 1 else "")
        lines.append(f"timing judged on raw rounds, without drift correction ({reason}): {example}")
    return lines


def gate_runs(baseline: Run, current: Run, *, policy: Policy, strict_machine: bool = False,
              allow_missing: bool = False) -> R.GateResult:
    """Compare ``current`` against ``baseline`` under ``policy``."""
    warnings: list[str] = []
    diffs = machine_differences(baseline.machine_info, current.machine_info)
    machine_failed = bool(diffs) and (strict_machine or policy.machine == "fail")
    if diffs:
        warnings.append("baseline was measured on a different machine or software stack: "
                        + "; ".join(d.describe() for d in diffs))
    base_index = _index(baseline, "baseline", warnings)
    cur_index = _index(current, "current", warnings)
    failed = {_entry_key(e): e for e in current.failed}
    skipped = {_entry_key(e): e for e in current.skipped}
    missing_outcome = R.WARN if allow_missing or policy.on_missing == "warn" else R.FAIL
    rows: list[R.Row] = []
    drift, left_out = _machine_drift(base_index, cur_index, policy)
    noise = timing_noise(base_index, cur_index, drift, policy)
    by_process = {key: found for key, base in base_index.items() if key in cur_index and (found := process_evidence(
        base, cur_index[key], alpha=policy.alpha, references_match=isinstance(cell_ratio(base, cur_index[key]), float)))}
    residual = residual_noise(noise, by_process.values())
    run_sigma = run_level_sigma([*base_index.values(), *cur_index.values()]) if by_process else None

    for key, base in base_index.items():
        cell = _display(base.test, base.cell_id)
        cur = cur_index.get(key)
        if cur is None:
            if key in failed:
                rows.append(R.Row(cell=cell, key=key, metric=None, verdict=R.FAILED, outcome=R.FAIL,
                                  note=str(failed[key].get("reason") or "failed")))
            else:
                why = (f"skipped: {skipped[key].get('reason')}" if key in skipped
                       else "cell not in the current run")
                rows.append(R.Row(cell=cell, key=key, metric=None, verdict=R.MISSING,
                                  outcome=missing_outcome, note=why))
            continue
        evidence_by_source: dict[str, Evidence] = {}
        cell_drift: Correction | None = drift.correction(key) if drift else None
        # METRICS order keeps the table stable and readable; figures named by pattern follow.
        for metric in [*METRICS, *dict.fromkeys(m for r in (base, cur) for m in r.metrics if m not in METRICS)]:
            rule = policy.rule_for(metric=metric, test=base.test, cell_id=base.cell_id, params=base.params)
            if rule is None:
                continue
            if metric not in base.metrics:
                if metric in cur.metrics:
                    rows.append(R.Row(cell=cell, key=key, metric=metric, verdict=R.NEW, outcome=R.OK,
                                      current=cur.metrics[metric], note="metric not in the baseline"))
                continue
            if metric not in cur.metrics:
                rows.append(R.Row(cell=cell, key=key, metric=metric, verdict=R.MISSING,
                                  outcome=missing_outcome, baseline=base.metrics[metric],
                                  note="metric not in the current run"))
                continue
            sampled = metric_spec(metric).kind in SAMPLED_KINDS
            evidence = None
            metric_noise = noise.get(metric) if sampled else None
            if sampled:  # one test per cell and source of rounds: p50, p95, throughput share it
                source, base_samples, cur_samples = paired_samples(base, cur, metric)
                if source == "rounds" and metric in MEDIAN_BASED and key in by_process:
                    # The median, from whole processes on both sides (gate/processes.py); a tail stays on rounds.
                    source = "processes"
                    evidence_by_source[source] = by_process[key]
                    metric_noise = _process_noise(by_process[key], residual.get(metric), run_sigma, base, cur)
                if source not in evidence_by_source:
                    cur_samples = cell_drift.current_samples(cur_samples) if cell_drift else cur_samples
                    evidence_by_source[source] = compare_samples(base_samples, cur_samples, alpha=policy.alpha,
                                                                 min_rounds=policy.min_rounds)
                evidence = evidence_by_source[source]
            rows.append(judge_metric(metric=metric, rule=rule, base=base, cur=cur, policy=policy,
                                     evidence=evidence if sampled else None, cell=cell,
                                     drift=cell_drift if sampled or metric_spec(metric).kind in DRIFT_CORRECTED_KINDS
                                     else None,
                                     noise=metric_noise))

    for key, cur in cur_index.items():
        if key not in base_index:
            rows.append(R.Row(cell=_display(cur.test, cur.cell_id), key=key, metric=None, verdict=R.NEW,
                              outcome=R.OK, note="cell not in the baseline"))
    for key, entry in failed.items():
        if key not in base_index and key not in cur_index:
            cell = _display(key[0], str(entry.get("cell_id") or "-".join(map(str, key[1:]))))
            rows.append(R.Row(cell=cell, key=key, metric=None, verdict=R.FAILED, outcome=R.WARN,
                              note=f"new cell failed: {entry.get('reason') or 'no reason given'}"))
    warnings += drift_warnings(drift, left_out, noise)
    if by_process:
        first = next(iter(by_process.values()))
        kinds = sorted({e.method for e in by_process.values()})
        warnings.append(f"{len(by_process)} cell(s) judged on whole processes (e.g. {first.n_baseline} vs "
                        f"{first.n_current}; {'; '.join(kinds)}): their median's interval is a t interval over "
                        "the processes" + ("; the runs' residual noise added to unpaired ones: "
                                           + ", ".join(f"{m} {n:.0%}" for m, n in residual.items()) if residual else "")
                        + (f"; run-level noise of an interleaved job's runs {run_sigma:.1%}, added to the mean of "
                           "each side's runs" if run_sigma else ""))
    return R.GateResult(rows=rows, policy=policy, baseline_label=str(baseline.path or "baseline"),
                        current_label=str(current.path or "current"), machine_differences=diffs,
                        machine_failed=machine_failed, warnings=warnings,
                        machine_drift=drift.to_dict() if drift else None, between_run_noise=noise)
