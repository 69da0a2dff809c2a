"""The recommendation's rules, one check each, with the rule that a difference inside the
interval is no difference.

A quality record may carry ``M_ci95: [lo, hi]``, a 95 % interval of figure M. For the delta
figures (``accuracy_delta_pts``, ``perplexity_delta_pct``, ``kl_divergence``, ``top1_agreement``...)
it is the interval of the paired comparison against fp32 on the same texts. Each check below
rejects a variant only when the whole interval is on the wrong side of its limit; a variant that
passes only thanks to its interval passes with a note saying so. Without an interval a check is
the plain comparison it always was.

* **Accuracy (classifiers).** Kept: accuracy >= 99 % of fp32's. Below that line the variant is
  still kept when the upper bound of its ``accuracy_delta_pts_ci95`` reaches the line, i.e.
  hi >= -(1 - 0.99) x fp32 accuracy x 100 pts: the shortfall is not significant.
* **Fairness guards** (dp_difference, eo_difference, flip_rate). Rejected when the figure exceeds
  fp32's + tolerance and, where it has an interval, the interval's lower bound does too.
* **Quality budget (generation).** A budget figure is out of budget only when its interval lies
  wholly beyond the limit: lo > limit for an upper limit (KL, ΔPPL), hi < limit for a lower one
  (top-1 agreement, Δ accuracy).
  A budget may also name an lm-eval figure's change against fp32 (``lm_eval.<task>.<metric>_delta_min``
  or ``_delta_max``), judged the same way on its paired interval.
* **Zero-shot floor.** A generation variant (or its fp32 reference) whose record says
  ``zero_shot_at_floor`` scores zero-shot no better than always answering the majority label.
  Its zero-shot figures (the accuracy in the budget, flip_rate, dp/eo, all from label-word scores)
  then say nothing about the variant: they neither reject nor rank it, and the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quantbench.results import lm_eval_budget

if TYPE_CHECKING:  # model.py imports this module
    from quantbench.reports.model import VariantSummary

#: A recommended variant keeps at least this share of the fp32 accuracy.
ACCURACY_KEEP = 0.99
#: Fairness figures a recommended variant must not worsen beyond the suite tolerance.
FAIRNESS_GUARDS = ("dp_difference", "eo_difference", "flip_rate")
#: budget key -> (metric, True when the figure must stay at or below the budget)
BUDGET_RULES = {"kl_divergence": ("kl_divergence", True), "perplexity_delta_pct": ("perplexity_delta_pct", True),
                "top1_agreement_min": ("top1_agreement", False),
                "accuracy_delta_pts_min": ("accuracy_delta_pts", False)}
#: Budget figures that come from zero-shot label-word scores on a generation model.
ZERO_SHOT_BUDGET = frozenset({"accuracy_delta_pts"})
_FLOOR_NOTE = ("flagged: zero-shot at the majority floor{whose}, so its zero-shot accuracy and fairness figures "
               "(flip_rate, dp/eo) say nothing about the variant and are not used to reject or rank it")


@dataclass(frozen=True)
class Check:
    ok: bool
    why: str = ""  # the reason, when not ok
    notes: tuple[str, ...] = ()  # passed only thanks to an interval, or a check set aside
    judged: bool = True  # False: the check was set aside (zero-shot floor)


def fmt_interval(ci: tuple[float, float], spec: str) -> str:
    return f"[{format(ci[0], spec)}, {format(ci[1], spec)}]"


def at_zero_shot_floor(summary: VariantSummary, ref: VariantSummary | None) -> str | None:
    """Whose zero-shot score is at the floor ("" the variant's, " (fp32's)"), else None."""
    if not summary.is_generation:
        return None
    if summary.zero_shot_at_floor:
        return ""
    if ref is not None and ref.zero_shot_at_floor:
        return " (fp32's)"
    return None


def floor_note(summary: VariantSummary, ref: VariantSummary | None) -> str | None:
    """The flag of a generation variant whose zero-shot figures were set aside, else None."""
    whose = at_zero_shot_floor(summary, ref)
    return None if whose is None else _FLOOR_NOTE.format(whose=whose)


def check_accuracy(summary: VariantSummary, ref: VariantSummary | None) -> Check:
    """The 99 %-of-fp32 rule, where a shortfall inside the interval is no shortfall."""
    acc = summary.accuracy
    if acc is None:
        return Check(False, "no accuracy measured")
    if ref is None or ref.accuracy is None:
        flag = summary.quality_extra.get("keeps_99pct_accuracy")
        if isinstance(flag, bool):  # the sweep's own verdict, when fp32 was not in this run
            return Check(flag, "" if flag else "sweep reports < 99% of fp32 accuracy")
        return Check(False, "no fp32 accuracy to compare with")
    fp32 = ref.accuracy
    if acc >= ACCURACY_KEEP * fp32:
        return Check(True)
    head = f"accuracy {acc:.4f} < {ACCURACY_KEEP:.0%} of fp32 {fp32:.4f}"
    ci = summary.quality_ci.get("accuracy_delta_pts")
    if ci is None:
        return Check(False, head)
    line = (ACCURACY_KEEP - 1) * fp32 * 100  # the 99 % line as a change in points (negative)
    delta = summary.accuracy_delta_pts if summary.accuracy_delta_pts is not None else (acc - fp32) * 100
    where = f"{delta:+.2f} pts against the {ACCURACY_KEEP:.0%} line at {line:+.2f} pts"
    if ci[1] >= line:
        note = (f"accuracy {acc:.4f} vs fp32 {fp32:.4f} ({where}) is inside the interval "
                f"{fmt_interval(ci, '+.2f')} pts: no significant difference")
        return Check(True, notes=(note,))
    return Check(False, f"{head} ({where}), and significantly: the interval {fmt_interval(ci, '+.2f')} pts "
                        "lies wholly below the line")


def check_fairness(summary: VariantSummary, ref: VariantSummary | None, tolerance: float) -> Check:
    """No guard figure worse than fp32's + tolerance, unless its interval reaches back within it."""
    if ref is None:
        return Check(True)
    if at_zero_shot_floor(summary, ref) is not None:
        return Check(True, judged=False)  # the caller flags the variant (floor_note)
    notes = []
    for name in FAIRNESS_GUARDS:
        mine, theirs = summary.quality.get(name), ref.quality.get(name)
        if mine is None or theirs is None or mine <= theirs + tolerance:
            continue
        head = f"{name} {mine:.4f} > fp32 {theirs:.4f} + tolerance {tolerance:g}"
        ci = summary.quality_ci.get(name)
        if ci is None:
            return Check(False, head)
        if ci[0] > theirs + tolerance:
            return Check(False, f"{head}, and significantly: its interval {fmt_interval(ci, '.4f')} lies wholly above")
        notes.append(f"{head}, but its interval {fmt_interval(ci, '.4f')} reaches back within it: "
                     "no significant difference")
    return Check(True, notes=tuple(notes))


def check_budget(summary: VariantSummary, budget: dict[str, float], ref: VariantSummary | None = None) -> Check:
    """A generation variant's quality against the suite's budget (fp32 is within it by definition)."""
    if summary.variant.is_fp32:
        return Check(True)
    floor = at_zero_shot_floor(summary, ref)
    notes = []
    for key, limit in budget.items():
        metric, at_most = BUDGET_RULES.get(key) or lm_eval_budget(key)
        if metric in ZERO_SHOT_BUDGET and floor is not None:
            continue  # set aside; the caller flags the variant (floor_note)
        value = summary.quality.get(metric)
        if value is None:
            return Check(False, f"no {metric} measured")
        if not ((value > limit) if at_most else (value < limit)):
            continue
        unit = " %" if metric == "perplexity_delta_pct" else ""
        head = f"{metric} {value:+.4g}{unit} {'>' if at_most else '<'} budget {limit:g}{unit}"
        ci = summary.quality_ci.get(metric)
        if ci is None:
            return Check(False, head)
        if (ci[0] > limit) if at_most else (ci[1] < limit):
            return Check(False, f"{head}, and significantly: the interval {fmt_interval(ci, '+.4g')}{unit} "
                                "lies wholly beyond it")
        notes.append(f"{head}, but within budget thanks to its interval {fmt_interval(ci, '+.4g')}{unit}, "
                     "which reaches the limit")
    return Check(True, notes=tuple(notes))
