"""Gate policy: which metrics are gated, in which direction, by how much, and how strictly.

A policy is a mapping (a YAML file, or the ``gates:`` key of a suite file)::

    alpha: 0.01            # Mann-Whitney U significance level for timing metrics
    min_rounds: 5          # fewer rounds on either side -> "insufficient data"
    on_insufficient: warn  # warn | fail
    on_unresolved: warn    # warn | fail (the rounds' interval straddles the threshold: neither shown nor ruled out)
    on_missing: fail       # warn | fail (a baseline cell or metric absent from the current run)
    machine: warn          # warn | fail (baseline taken on a different machine)
    drift_correction: true # divide each cell's timing by its own drift reference's change (measures/drift.py)
    noise_floor: true      # widen timing intervals by this pair's between-run noise (gate/drift.py); a change
                           # the pair cannot resolve is unresolved, with the cell's minimum detectable effect
    defaults: true         # start from DEFAULT_RULES; false starts from no rules at all
    rules:                 # later rules win over earlier ones (and over the defaults)
      - metric: latency_p50_ms     # a name from results.METRICS, a glob ("latency_*"), or a glob
                                   # on lm-eval figures ("lm_eval.*", "lm_eval.tweets_sentiment.acc")
        threshold: 15%             # "15%" (relative), "1pt" (absolute 0.01) or a number
        mode: relative             # relative | absolute (default by metric kind)
        direction: lower           # lower | higher is better (default from METRICS)
        cells: "*nf4*"             # glob(s) on the cell id or test[cell id]
        where: {quant: nf4}        # glob(s) on cell parameters (test, model, quant, ...)
        min_delta: 5               # relative rules also need |current - baseline| >= this
        significance: true         # quality figures: the change must also exceed its 95 % interval
        skip: true                 # do not gate the matching metric/cells at all
"""

from __future__ import annotations

import math

import dataclasses
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from quantbench.errors import QuantbenchError
from quantbench.results import CELL_PARAMS, LM_EVAL_PREFIX, METRICS, metric_spec
from quantbench.yaml_text import parse_yaml

RELATIVE, ABSOLUTE = "relative", "absolute"
MODES = (RELATIVE, ABSOLUTE)
DIRECTIONS = ("lower", "higher")
SEVERITIES = ("warn", "fail")
POLICY_KEYS = ("alpha", "min_rounds", "on_insufficient", "on_unresolved", "on_missing", "machine", "drift_correction",
               "noise_floor", "defaults", "rules")
RULE_KEYS = ("metric", "threshold", "mode", "direction", "cells", "where", "min_delta", "significance", "skip")
WHERE_KEYS = ("test", *CELL_PARAMS, "task")
#: Metric kinds whose natural threshold is a share of the baseline; the rest are absolute.
RELATIVE_KINDS = ("timing", "throughput", "memory", "size", "serving")
#: Kinds judged on raw per-round samples (Mann-Whitney U), not on one number.
SAMPLED_KINDS = ("timing", "throughput")
#: Kinds judged on one number with the machine's drift divided out: a serving capacity comes from one
#: search per run (no rounds to test), and the machine's speed moves it as it moves latency.
DRIFT_CORRECTED_KINDS = ("serving",)
#: Kinds measured on a sample of texts, whose records may carry an interval (``significance``).
QUALITY_KINDS = ("accuracy", "fairness")
#: Kinds whose records may carry an interval a rule's ``significance`` can use: quality figures, and a
#: serving capacity (its fit at the knee, serving/capacity_fit.py).
INTERVAL_KINDS = (*QUALITY_KINDS, "serving")
GENERATION = (("task", ("text-generation",)),)

ERR_NOT_ONE_OF = "{where}: {key}: {value!r} is not one of: {allowed}"
ERR_UNKNOWN_KEYS = "{where}: {key}: unknown key(s) {unknown}; allowed: {allowed}"
ERR_UNKNOWN_METRIC = "{where}: {key}: {value!r} matches no metric; known metrics: {allowed}"
ERR_THRESHOLD = ("{where}: {key}: {value!r} is not a threshold; use a number >= 0, "
                 "'N%' (relative) or 'Npt' (absolute percentage points)")


def change_of(base: float, value: float, mode: str) -> float:
    """The change from ``base`` to ``value``: absolute, or relative to ``|base|`` (a rule's mode)."""
    if mode == ABSOLUTE:
        return value - base
    if base == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - base) / abs(base)


@dataclass(frozen=True)
class Rule:
    """One gating rule, already validated; ``metrics`` is the expanded metric glob."""

    metrics: tuple[str, ...]
    threshold: float = 0.0
    mode: str = RELATIVE
    direction: str | None = None  # None: take METRICS[metric].better
    cells: tuple[str, ...] = ()
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    min_delta: float = 0.0
    skip: bool = False
    origin: str = "built-in default"
    # Quality figures only: a change past the threshold must also exceed 1.96 x the combined
    # standard error of both runs' figures (gate/significance.py); without intervals, the threshold alone.
    significance: bool = False
    # Globs on figures named by pattern (lm-eval's ``lm_eval.<task>.<metric>``), which no list can hold.
    patterns: tuple[str, ...] = ()

    def matches(self, *, metric: str, test: str, cell_id: str, params: Mapping[str, Any]) -> bool:
        if metric not in self.metrics and not any(fnmatch.fnmatchcase(metric, p) for p in self.patterns):
            return False
        if self.cells and not any(fnmatch.fnmatchcase(name, pat)
                                  for pat in self.cells for name in (cell_id, f"{test}[{cell_id}]")):
            return False
        values = {"test": test, **params}
        return all(any(fnmatch.fnmatchcase(str(values.get(key)), pat) for pat in pats)
                   for key, pats in self.where)

    def better(self, metric: str) -> str:
        return self.direction or metric_spec(metric).better


def _rule(metric: str, threshold: float, mode: str, **kw: Any) -> Rule:
    return Rule(metrics=(metric,), threshold=threshold, mode=mode, **kw)


#: Built-in rules. Why these numbers: see docs/gating.md ("Default policy").
DEFAULT_RULES: tuple[Rule, ...] = (
    # Timing: 10% on the median; the tail (p95 of ~20 rounds) is noisier, so 15%.
    # Both also need a significant Mann-Whitney U test on the raw rounds.
    _rule("latency_p50_ms", 0.10, RELATIVE),
    _rule("latency_p95_ms", 0.15, RELATIVE),
    _rule("throughput_samples_per_s", 0.10, RELATIVE),
    # Memory: RSS moves a few MB with allocator state, hence the 5 MB floor.
    _rule("peak_rss_mb", 0.10, RELATIVE, min_delta=5.0),
    _rule("cuda_peak_allocated_mb", 0.10, RELATIVE, min_delta=5.0),
    # Disk size is deterministic: a 5% growth is a real change in what is stored.
    _rule("disk_size_mb", 0.05, RELATIVE),
    # Accuracy-like figures on a fixed evaluation split: 1 percentage point.
    _rule("accuracy", 0.01, ABSOLUTE),
    _rule("f1_macro", 0.01, ABSOLUTE),
    _rule("agreement_with_fp32", 0.01, ABSOLUTE),
    _rule("balanced_accuracy", 0.01, ABSOLUTE),
    # Fairness gaps: an absolute increase of 0.02.
    _rule("dp_difference", 0.02, ABSOLUTE),
    _rule("eo_difference", 0.02, ABSOLUTE),
    _rule("flip_rate", 0.02, ABSOLUTE),
    # A generation model's zero-shot and probe figures come from few texts (suites/llm.yaml: 48 texts,
    # 64 pairs; one text is 2 pts of accuracy, one pair 1.6 pts of flip rate, both past the thresholds
    # above): same thresholds, and the change must also exceed the figures' 95 % interval.
    Rule(metrics=("accuracy", "balanced_accuracy", "f1_macro", "agreement_with_fp32"), threshold=0.01,
         mode=ABSOLUTE, where=GENERATION, significance=True),
    Rule(metrics=("dp_difference", "eo_difference", "flip_rate"), threshold=0.02, mode=ABSOLUTE,
         where=GENERATION, significance=True),
    # Generation: prefill and decode medians like latency p50 (each judged on its own raw rounds),
    # tokens/s like throughput.
    _rule("ttft_p50_ms", 0.10, RELATIVE),
    _rule("tpot_p50_ms", 0.10, RELATIVE),
    _rule("decode_tokens_per_s", 0.10, RELATIVE),
    _rule("total_tokens_per_s", 0.10, RELATIVE),
    # A whole generate is TTFT + (n - 1) x TPOT, each gated above on its own samples; its few
    # rounds (2 to 4 in suites/llm.yaml) would only add "insufficient data" rows. A policy rule re-adds it.
    Rule(metrics=("latency_p50_ms", "latency_p95_ms", "total_tokens_per_s"), skip=True,
         where=(("test", ("test_generation",)),)),
    # Language-model quality on fixed held-out text is deterministic on one machine: perplexity
    # may rise 5 %, KL 0.02 nats; top-1 agreement with fp32 may drop 2 points.
    _rule("perplexity", 0.05, RELATIVE),
    _rule("kl_divergence", 0.02, ABSOLUTE),
    _rule("top1_agreement", 0.02, ABSOLUTE),
    # lm-eval figures come from a few dozen to a few thousand documents: like the zero-shot figures,
    # 1 point and significant against both runs' stderr (lm-eval's own); its perplexities 5 % and
    # significant. Their change against fp32 moves with fp32 and is not gated on its own.
    Rule(metrics=(), patterns=(f"{LM_EVAL_PREFIX}*",), threshold=0.01, mode=ABSOLUTE, significance=True),
    Rule(metrics=(), patterns=(f"{LM_EVAL_PREFIX}*perplexity*", f"{LM_EVAL_PREFIX}*bits_per_byte*"), threshold=0.05,
         mode=RELATIVE, significance=True),
    Rule(metrics=(), patterns=(f"{LM_EVAL_PREFIX}*_delta",), skip=True),
    # Serving: the capacity at the SLO is bigger-is-better, drift-corrected, and carries a 95 % interval
    # from its search's fit at the knee, on 3 freshly started systems (serving/capacity_fit.py): a change
    # must be past the threshold and outside the interval of the difference. The thresholds come from runs
    # of `make serve` of one commit on the Xeon VM (docs/serving.md, "How repeatable"), at 3 sd of a clean
    # pair's change (sqrt(2) x the between-run sd of the log, pooled over the headline cells): the
    # classifier's moved 6.7 % (6 runs; MiniLM fp32 at max batch 4 moved 34 % in one series), so 30 %;
    # the LLM's, each the geometric mean of 3 llama-server processes, 3.7 % (6 runs; 17 % with one
    # process a run), so 20 %. Six runs make a rough sd: the thresholds are rounded up.
    _rule("capacity_qps", 0.30, RELATIVE, significance=True),
    Rule(metrics=("capacity_qps",), threshold=0.20, mode=RELATIVE, where=GENERATION, significance=True),
)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = DEFAULT_RULES
    alpha: float = 0.01
    min_rounds: int = 5
    on_insufficient: str = "warn"
    on_unresolved: str = "warn"
    on_missing: str = "fail"
    machine: str = "warn"
    drift_correction: bool = True
    noise_floor: bool = True
    source: str = "built-in defaults"

    def rule_for(self, *, metric: str, test: str, cell_id: str, params: Mapping[str, Any]) -> Rule | None:
        """The last matching rule, or None when the metric is not gated for this cell."""
        for rule in reversed(self.rules):
            if rule.matches(metric=metric, test=test, cell_id=cell_id, params=params):
                return None if rule.skip else rule
        return None

    def replace(self, **changes: Any) -> "Policy":
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for --json output)."""
        return {
            "source": self.source, "alpha": self.alpha, "min_rounds": self.min_rounds,
            "on_insufficient": self.on_insufficient, "on_unresolved": self.on_unresolved,
            "on_missing": self.on_missing,
            "machine": self.machine, "drift_correction": self.drift_correction,
            "noise_floor": self.noise_floor,
            "rules": [{"metrics": list(r.metrics), "patterns": list(r.patterns), "threshold": r.threshold, "mode": r.mode,
                       "direction": r.direction, "cells": list(r.cells),
                       "where": {k: list(v) for k, v in r.where}, "min_delta": r.min_delta,
                       "significance": r.significance, "skip": r.skip, "origin": r.origin} for r in self.rules],
        }


def _fail(template: str, **fields: Any) -> QuantbenchError:
    return QuantbenchError(template.format(**fields))


def _choice(value: Any, allowed: tuple[str, ...], *, where: str, key: str) -> str:
    if value not in allowed:
        raise _fail(ERR_NOT_ONE_OF, where=where, key=key, value=value, allowed=", ".join(allowed))
    return value


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], *, where: str, key: str) -> None:
    unknown = [k for k in data if k not in allowed]
    if unknown:
        raise _fail(ERR_UNKNOWN_KEYS, where=where, key=key, unknown=", ".join(map(repr, unknown)),
                    allowed=", ".join(allowed))


def _number(value: Any, *, where: str, key: str, low: float, high: float | None = None,
            integer: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"between {low} and {high}"
        kind = "an integer" if integer else "a number"
        raise QuantbenchError(f"{where}: {key}: {value!r} must be {kind} {span}")
    return int(value) if integer else float(value)


_THRESHOLD_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(%|pts?)\s*$")


def parse_threshold(value: Any, *, where: str, key: str) -> tuple[float, str | None]:
    """``0.1`` -> (0.1, None); ``"10%"`` -> (0.1, relative); ``"1pt"`` -> (0.01, absolute)."""
    if isinstance(value, str):
        match = _THRESHOLD_RE.match(value)
        if not match:
            raise _fail(ERR_THRESHOLD, where=where, key=key, value=value)
        number = float(match.group(1)) / 100
        return number, (RELATIVE if match.group(2) == "%" else ABSOLUTE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _fail(ERR_THRESHOLD, where=where, key=key, value=value)
    return float(value), None


def _globs(value: Any, *, where: str, key: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in items):
        raise QuantbenchError(f"{where}: {key}: {value!r} must be a string or a list of strings")
    return tuple(str(v) for v in items)


def _parse_rule(data: Any, *, where: str, key: str) -> Rule:
    if not isinstance(data, Mapping):
        raise QuantbenchError(f"{where}: {key}: a rule must be a mapping with keys: {', '.join(RULE_KEYS)}")
    _check_keys(data, RULE_KEYS, where=where, key=key)
    if "metric" not in data:
        raise QuantbenchError(f"{where}: {key}.metric: missing; every rule names a metric (or a glob)")
    pattern = data["metric"]
    metrics = tuple(m for m in METRICS if isinstance(pattern, str) and fnmatch.fnmatchcase(m, pattern))
    patterns = (pattern,) if isinstance(pattern, str) and pattern.startswith(LM_EVAL_PREFIX) else ()
    if not metrics and not patterns:
        raise _fail(ERR_UNKNOWN_METRIC, where=where, key=f"{key}.metric", value=pattern,
                    allowed=", ".join(METRICS) + f", or {LM_EVAL_PREFIX}<task>.<metric> (globs allowed)")
    skip = data.get("skip", False)
    if not isinstance(skip, bool):
        raise _fail(ERR_NOT_ONE_OF, where=where, key=f"{key}.skip", value=skip, allowed="true, false")
    threshold, implied = 0.0, None
    if "threshold" in data:
        threshold, implied = parse_threshold(data["threshold"], where=where, key=f"{key}.threshold")
    elif not skip:
        raise QuantbenchError(f"{where}: {key}.threshold: missing; give e.g. 10% or 1pt, or skip: true")
    mode = data.get("mode")
    if mode is not None:
        _choice(mode, MODES, where=where, key=f"{key}.mode")
        if implied and implied != mode:
            raise QuantbenchError(f"{where}: {key}.threshold: {data['threshold']!r} is {implied} "
                                  f"but {key}.mode says {mode}")
    else:
        kinds = {METRICS[m].kind for m in metrics} | ({"accuracy"} if patterns else set())
        mode = implied or (RELATIVE if kinds <= set(RELATIVE_KINDS) else ABSOLUTE)
    direction = data.get("direction")
    if direction is not None:
        _choice(direction, DIRECTIONS, where=where, key=f"{key}.direction")
    significance = data.get("significance", False)
    if not isinstance(significance, bool):
        raise _fail(ERR_NOT_ONE_OF, where=where, key=f"{key}.significance", value=significance, allowed="true, false")
    if significance and not patterns and not any(METRICS[m].kind in INTERVAL_KINDS for m in metrics):
        raise QuantbenchError(f"{where}: {key}.significance: applies to figures with an interval (kinds "
                              f"{', '.join(INTERVAL_KINDS)}), and {pattern!r} matches none; timing is always "
                              "tested on its rounds")
    where_items: list[tuple[str, tuple[str, ...]]] = []
    if "where" in data:
        if not isinstance(data["where"], Mapping):
            raise QuantbenchError(f"{where}: {key}.where: must be a mapping of {', '.join(WHERE_KEYS)}")
        _check_keys(data["where"], WHERE_KEYS, where=where, key=f"{key}.where")
        where_items = [(k, _globs(v, where=where, key=f"{key}.where.{k}")) for k, v in data["where"].items()]
    return Rule(
        metrics=metrics, threshold=threshold, mode=mode, direction=direction,
        cells=_globs(data["cells"], where=where, key=f"{key}.cells") if "cells" in data else (),
        where=tuple(where_items),
        min_delta=_number(data.get("min_delta", 0.0), where=where, key=f"{key}.min_delta", low=0.0),
        skip=skip, origin=f"{where}: {key}", significance=significance, patterns=patterns,
    )


def parse_policy(data: Any, *, where: str = "policy") -> Policy:
    """Validate a policy mapping, or a suite mapping that carries one under ``gates:``."""
    prefix = ""
    if isinstance(data, Mapping) and "gates" in data:
        data, prefix = data["gates"], "gates."
    if not isinstance(data, Mapping):
        got = "an empty file" if data is None else type(data).__name__
        raise QuantbenchError(f"{where}: {prefix or 'policy'}: expected a mapping with keys "
                              f"{', '.join(POLICY_KEYS)}; got {got}")
    if not prefix and any(k not in POLICY_KEYS for k in data):
        unknown = ", ".join(repr(k) for k in data if k not in POLICY_KEYS)
        raise QuantbenchError(f"{where}: no 'gates:' key, and {unknown} are not policy keys; "
                              f"allowed: gates, {', '.join(POLICY_KEYS)}")
    _check_keys(data, POLICY_KEYS, where=where, key=prefix.rstrip(".") or "policy")
    defaults = data.get("defaults", True)
    if not isinstance(defaults, bool):
        raise _fail(ERR_NOT_ONE_OF, where=where, key=f"{prefix}defaults", value=defaults, allowed="true, false")
    switches = {}
    for name in ("drift_correction", "noise_floor"):
        switches[name] = data.get(name, True)
        if not isinstance(switches[name], bool):
            raise _fail(ERR_NOT_ONE_OF, where=where, key=f"{prefix}{name}", value=switches[name],
                        allowed="true, false")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise QuantbenchError(f"{where}: {prefix}rules: must be a list of rules, got {type(raw_rules).__name__}")
    rules = tuple(_parse_rule(r, where=where, key=f"{prefix}rules[{i}]") for i, r in enumerate(raw_rules))
    return Policy(
        rules=(DEFAULT_RULES if defaults else ()) + rules,
        alpha=_number(data.get("alpha", 0.01), where=where, key=f"{prefix}alpha", low=1e-9, high=0.5),
        min_rounds=_number(data.get("min_rounds", 5), where=where, key=f"{prefix}min_rounds",
                           low=2, integer=True),
        on_insufficient=_choice(data.get("on_insufficient", "warn"), SEVERITIES, where=where,
                                key=f"{prefix}on_insufficient"),
        on_unresolved=_choice(data.get("on_unresolved", "warn"), SEVERITIES, where=where,
                              key=f"{prefix}on_unresolved"),
        on_missing=_choice(data.get("on_missing", "fail"), SEVERITIES, where=where, key=f"{prefix}on_missing"),
        machine=_choice(data.get("machine", "warn"), SEVERITIES, where=where, key=f"{prefix}machine"),
        **switches, source=where,
    )


def load_policy(path_or_mapping: str | Path | Mapping[str, Any] | Policy | None = None, *,
                where: str | None = None) -> Policy:
    """A :class:`Policy` from a policy file, a suite file with ``gates:``, a mapping, or None (defaults).

    ``where`` labels a mapping in error messages (e.g. ``"suites/ci.yaml: gates"`` when the
    caller passes an already-loaded suite's ``gates`` block); files are labelled by their path.
    """
    source = path_or_mapping
    if source is None:
        return Policy()
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return parse_policy(source, where=where or "policy")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QuantbenchError(f"{path}: cannot read policy file ({exc.strerror or exc})") from None
    return parse_policy(parse_yaml(text, where=str(path)), where=str(path))
