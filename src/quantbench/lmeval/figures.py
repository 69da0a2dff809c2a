"""lm-eval's results JSON as a quantbench record's flat figures, and their change against fp32.

* Every ``results[task]["<metric>,<filter>"]`` becomes ``lm_eval.<task>.<metric>[.<filter>]``
  (:func:`quantbench.results.lm_eval_name`) with lm-eval's own ``<metric>_stderr`` as its ``_se``:
  the value and its error are the ones lm-eval's JSON holds, unrounded. A metric whose direction
  lm-eval's ``higher_is_better`` states otherwise than quantbench's table (a task's own metric)
  stays out of the flat figures, so no gate or rule judges it backwards; its reason is recorded.
* ``..._delta`` is the change against the fp32 variant, paired on the same documents: the mean of
  the per-document differences of a metric lm-eval averages per document (acc, acc_norm,
  exact_match...), with its standard error (sample standard deviation / sqrt(n), as lm-eval's
  ``mean_stderr``) and a normal 95 % interval. A metric aggregated over the corpus (f1, mcc,
  perplexities) has no per-document value to pair, so it has no delta.
* For a right/wrong metric (every per-document value 0 or 1: acc...), McNemar's exact test of
  the same pairs (quantbench/quality/mcnemar.py): ``..._delta_mcnemar_p`` and
  ``..._delta_discordant`` (``{"gained": right here and wrong in fp32, "lost": the reverse}``).
  Only discordant documents carry evidence, and the binomial test on them stays exact where the
  normal interval of a mean of a few ±1 differences is not.
* Each accuracy figure's majority floor, ``..._floor`` and ``..._at_floor``
  (quantbench/lmeval/floor.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quantbench.quality import uncertainty
from quantbench.quality.mcnemar import mcnemar_exact
from quantbench.results import LM_EVAL_DISCORDANT, LM_EVAL_MCNEMAR_P, lm_eval_name, metric_spec

STDERR = "_stderr"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def result_figures(results: dict[str, Any]) -> dict[str, Any]:
    """``lm_eval.<task>.<metric>`` and its ``_se`` for every figure in lm-eval's ``results`` block."""
    out: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for task, block in results.get("results", {}).items():
        directions = (results.get("higher_is_better") or {}).get(task) or {}
        for key, value in block.items():
            metric, _, filter_name = key.partition(",")
            if not filter_name or metric.endswith(STDERR) or not _number(value):
                continue
            name = lm_eval_name(task, metric, filter_name)
            higher = directions.get(metric)
            if isinstance(higher, bool) and (metric_spec(name).better == "higher") != higher:
                left_out[name] = (f"lm-eval says {'higher' if higher else 'lower'} is better, quantbench's table "
                                  "(results.LM_EVAL_LOWER_IS_BETTER) the other way: kept in lm_eval_results only")
                continue
            out[name] = value
            error = block.get(f"{metric}{STDERR},{filter_name}")
            if _number(error):
                out[f"{name}_se"] = error
    if left_out:
        out["lm_eval_not_figures"] = left_out
    return out


def per_document(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
    """``{figure name: {doc_id: value}}`` for every metric lm-eval scored per document as a number."""
    out: dict[str, dict[int, float]] = {}
    for task, rows in samples.items():
        for row in rows:
            for metric in row.get("metrics", ()):
                value = row.get(metric)
                if _number(value) or isinstance(value, bool):
                    out.setdefault(lm_eval_name(task, metric, row.get("filter", "none")), {})[row["doc_id"]] = float(value)
    return out


def paired_deltas(mine: dict[str, dict[int, float]], reference: dict[str, dict[int, float]]) -> dict[str, Any]:
    """``<figure>_delta`` (mean per-document difference against the reference), ``_se`` and ``_ci95``,
    for the figures both sides scored on the same documents; for right/wrong figures, McNemar's
    exact test of the same pairs (``_delta_mcnemar_p``, ``_delta_discordant``)."""
    out: dict[str, Any] = {}
    for name, values in mine.items():
        ref = reference.get(name)
        if not ref or set(ref) != set(values):
            continue
        docs = sorted(values)
        diff = np.asarray([values[d] - ref[d] for d in docs], dtype=np.float64)
        mean = float(diff.mean())
        se = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else 0.0
        out[f"{name}_delta"] = round(mean, 6)
        out[f"{name}_delta_se"] = round(se, 6)
        out[f"{name}_delta_ci95"] = uncertainty.normal_ci(mean, se, 6)
        out.update(_mcnemar(name, [values[d] for d in docs], [ref[d] for d in docs]))
    return out


def _mcnemar(name: str, mine: list[float], ref: list[float]) -> dict[str, Any]:
    if not set(mine) | set(ref) <= {0.0, 1.0}:
        return {}  # not right/wrong (a partial-credit score): the mean difference alone
    test = mcnemar_exact(mine, ref)
    return {f"{name}_delta{LM_EVAL_MCNEMAR_P}": test.p_value,  # unrounded: a tiny p stays distinct from 0
            f"{name}_delta{LM_EVAL_DISCORDANT}": {"gained": test.gained, "lost": test.lost}}


def stripped(results: dict[str, Any]) -> dict[str, Any]:
    """lm-eval's results JSON without the per-document samples (kept in memory, not in the record)."""
    return {key: value for key, value in results.items() if key != "samples"}
