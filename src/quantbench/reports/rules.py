"""The recommendation's rules, one check each: the point estimate decides, the interval says how sure.

A quality record may carry ``M_ci95: [lo, hi]``, a 95 % interval of figure M. For the delta figures
(``accuracy_delta_pts``, ``perplexity_delta_pct``, ``kl_divergence``, ``top1_agreement``...) it is the
interval of the paired comparison against fp32 on the same texts. As in MLPerf's accuracy rule (at
least 99 % of the reference, on the measured figure), **a variant whose point estimate breaks a rule is
never recommended**, whatever its interval: an interval that reaches back inside says the shortfall is
not significant, and the reason says so, but it does not rescue the figure. A variant whose point
estimate is inside but whose interval reaches past the limit passes *uncertain*: it is flagged, and
ranked after every variant whose intervals are inside too. Without an interval a check is the plain
comparison it always was.

* **Accuracy (classifiers).** Kept: accuracy >= 99 % of fp32's. Uncertain when the lower bound of its
  ``accuracy_delta_pts_ci95`` falls below the 99 % line (-(1 - 0.99) x fp32 accuracy x 100 pts).
* **Fairness guards** (dp_difference, eo_difference, flip_rate). Rejected when the figure exceeds
  fp32's + tolerance. Their intervals are of the variant's own figure, not of a paired difference, and
  fp32's figure has the same sampling noise on the same texts: on the Zen 3 runs every variant's
  interval, fp32's own among them, reached past fp32 + tolerance. So they explain a rejection but do
  not flag a variant as uncertain; only paired intervals (Δ accuracy, KL, ΔPPL, top-1, lm-eval deltas) do.
* **Quality budget (generation).** Rejected when a budget figure is beyond its limit (above for KL,
  ΔPPL; below for top-1 agreement, Δ accuracy); uncertain when only its interval reaches beyond.
  A budget may also name an lm-eval figure's change against fp32 (``lm_eval.<task>.<metric>_delta_min``
  or ``_delta_max``), judged the same way on its paired interval.
* **Zero-shot floor.** A generation variant (or its fp32 reference) whose record says
  ``zero_shot_at_floor`` scores zero-shot no better than always answering the majority label.
  Its zero-shot figures (the accuracy in the budget, flip_rate, dp/eo, all from label-word scores)
  then say nothing about the variant: they neither reject nor rank it, and the note says so.
* **lm-eval floor.** A budget on an lm-eval accuracy's change (``lm_eval.<task>.acc_delta_min``) is
  set aside, with a note, when fp32's own figure is at its majority floor (``..._at_floor``): the
  change then measures how the lean towards one answer moved. A variant at the floor against an
  fp32 above it is judged as usual: its drop is real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from quantbench.reports.lm_eval_view import floor_of
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
#: Why an interval that reaches back inside does not rescue a figure that is out.
ON_THE_POINT = "not a significant difference, but the rule is on the measured figure"
_FLOOR_NOTE = ("flagged: zero-shot at the majority floor{whose}, so its zero-shot accuracy and fairness figures "
               "(flip_rate, dp/eo) say nothing about the variant and are not used to reject or rank it")


_LM_EVAL_FLOOR_NOTE = ("set aside: fp32's {figure} is at its majority floor, so {metric} measures a shift in the lean "
                       "towards one answer, not a loss of quality")


@dataclass(frozen=True)
class Check:
    ok: bool
    why: str = ""  # the reason, when not ok
    notes: tuple[str, ...] = ()  # an interval that reaches past a limit, or a check set aside
    judged: bool = True  # False: the check was set aside (zero-shot floor)
    uncertain: bool = False  # inside on the point estimate, but an interval reaches past the limit


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
    """The 99 %-of-fp32 rule on the measured accuracy; its interval says how sure the verdict is."""
    acc = summary.accuracy
    if acc is None:
        return Check(False, "no accuracy measured")
    if ref is None or ref.accuracy is None:
        flag = summary.quality_extra.get("keeps_99pct_accuracy")
        if isinstance(flag, bool):  # the sweep's own verdict, when fp32 was not in this run
            return Check(flag, "" if flag else "sweep reports < 99% of fp32 accuracy")
        return Check(False, "no fp32 accuracy to compare with")
    fp32 = ref.accuracy
    ci = summary.quality_ci.get("accuracy_delta_pts")
    line = (ACCURACY_KEEP - 1) * fp32 * 100  # the 99 % line as a change in points (negative)
    delta = summary.accuracy_delta_pts if summary.accuracy_delta_pts is not None else (acc - fp32) * 100
    where = f"{delta:+.2f} pts against the {ACCURACY_KEEP:.0%} line at {line:+.2f} pts"
    if acc >= ACCURACY_KEEP * fp32:
        if ci is not None and ci[0] < line:
            return Check(True, uncertain=True, notes=(
                f"uncertain: accuracy {acc:.4f} keeps {ACCURACY_KEEP:.0%} of fp32 {fp32:.4f} ({where}), but its "
                f"interval {fmt_interval(ci, '+.2f')} pts reaches below the line",))
        return Check(True)
    head = f"accuracy {acc:.4f} < {ACCURACY_KEEP:.0%} of fp32 {fp32:.4f} ({where})"
    if ci is None:
        return Check(False, head)
    if ci[1] >= line:
        return Check(False, f"{head}; its interval {fmt_interval(ci, '+.2f')} pts reaches back above the line: "
                            f"{ON_THE_POINT}")
    return Check(False, f"{head}, and significantly: the interval {fmt_interval(ci, '+.2f')} pts "
                        "lies wholly below the line")


def check_fairness(summary: VariantSummary, ref: VariantSummary | None, tolerance: float) -> Check:
    """No guard figure worse than fp32's + tolerance on its measured value (its unpaired interval only
    explains a rejection; see the module docstring)."""
    if ref is None:
        return Check(True)
    if at_zero_shot_floor(summary, ref) is not None:
        return Check(True, judged=False)  # the caller flags the variant (floor_note)
    for name in FAIRNESS_GUARDS:
        mine, theirs = summary.quality.get(name), ref.quality.get(name)
        if mine is None or theirs is None:
            continue
        limit, ci = theirs + tolerance, summary.quality_ci.get(name)
        if mine <= limit:
            continue
        head = f"{name} {mine:.4f} > fp32 {theirs:.4f} + tolerance {tolerance:g}"
        if ci is None:
            return Check(False, head)
        if ci[0] > limit:
            return Check(False, f"{head}, and significantly: its interval {fmt_interval(ci, '.4f')} lies wholly above")
        return Check(False, f"{head}; its interval {fmt_interval(ci, '.4f')} reaches back within it: {ON_THE_POINT}")
    return Check(True)


def check_budget(summary: VariantSummary, budget: dict[str, float], ref: VariantSummary | None = None) -> Check:
    """A generation variant's quality against the suite's budget (fp32 is within it by definition)."""
    if summary.variant.is_fp32:
        return Check(True)
    floor = at_zero_shot_floor(summary, ref)
    notes, aside = [], []
    for key, limit in budget.items():
        metric, at_most = BUDGET_RULES.get(key) or lm_eval_budget(key)
        if metric in ZERO_SHOT_BUDGET and floor is not None:
            continue  # set aside; the caller flags the variant (floor_note)
        figure = metric.removesuffix("_delta")
        if metric != figure and ref is not None and floor_of(ref.quality_extra, figure) and \
                floor_of(ref.quality_extra, figure)[1]:
            aside.append(_LM_EVAL_FLOOR_NOTE.format(figure=figure, metric=metric))
            continue
        value = summary.quality.get(metric)
        if value is None:
            return Check(False, f"no {metric} measured")
        unit = " %" if metric == "perplexity_delta_pct" else ""
        ci = summary.quality_ci.get(metric)
        beyond = (lambda x: x > limit) if at_most else (lambda x: x < limit)
        if not beyond(value):
            if ci is not None and beyond(ci[1] if at_most else ci[0]):
                notes.append(f"uncertain: {metric} {value:+.4g}{unit} is within budget {limit:g}{unit}, but its "
                             f"interval {fmt_interval(ci, '+.4g')}{unit} reaches beyond it")
            continue
        head = f"{metric} {value:+.4g}{unit} {'>' if at_most else '<'} budget {limit:g}{unit}"
        if ci is None:
            return Check(False, head)
        if beyond(ci[0] if at_most else ci[1]):
            return Check(False, f"{head}, and significantly: the interval {fmt_interval(ci, '+.4g')}{unit} "
                                "lies wholly beyond it")
        return Check(False, f"{head}; its interval {fmt_interval(ci, '+.4g')}{unit} reaches the limit: {ON_THE_POINT}")
    return Check(True, notes=tuple(notes + aside), uncertain=bool(notes))
