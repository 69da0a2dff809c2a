"""The gate against the history, for one cell x metric: this run's value against the same cell's last N runs
on the same machine. Values in, a verdict out; no database here (gate/history.py reads the store).

Two questions, each answered on its own, and a regression needs the policy's threshold as well:

* **Is this run outside what the machine usually measures?** conbench's lookback z-score, made robust: the
  window's *median* and its *MAD* (median absolute deviation x 1.4826, the normal's sd) instead of the mean
  and the standard deviation. A slow spell or two in the window (this VM kind has them: docs/gating.md)
  moves neither, where they would widen a standard deviation and hide the next regression; the median and
  the MAD break down only when half the window is off. Where more than half the window is one value (a
  deterministic figure: disk size, accuracy on a fixed split), the MAD is 0 and the mean absolute
  deviation from the median (x 1.2533) is used; a window of one value has no spread, and any move off it
  is outside. ``z`` is signed so that positive is *worse* (the metric's direction from the policy rule,
  which takes it from :data:`quantbench.results.METRICS`).
* **Did the level this run is on begin at a step?** E-divisive change points
  (:mod:`quantbench.history.changepoints`) on the window plus this run, the runs of one commit averaged
  (``per_commit``). The step that the run's level began at is reported with the commit where it began and
  its size, so a regression several runs already carry (stored, never gated) is still named. A step needs
  :data:`HEAD_MIN_SIZE` commits on each side here: one run at a new level is the z-score's question.

The rule (docs/history.md, "Gate against the history"):

* fewer than ``min_history`` runs of the cell on this machine: ``insufficient data``, with the count;
* worse than the threshold against the window's median **and** ``z`` past :data:`Z_THRESHOLD`: regression;
* a step into this run's level, worse than the threshold, significant (the permutation test), this run on
  the new level: regression, with the commit where it began (even where the window's median has already
  half moved to the new level and ``z`` alone would not show it);
* worse than the threshold but inside the window's spread: ``within noise`` (passes, named in the summary);
* the same in the better direction: improvement or ``within noise``; else pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from quantbench.gate import verdicts as R
from quantbench.gate.policy import ABSOLUTE, SAMPLED_KINDS, Rule, change_of
from quantbench.gate.render import _fmt_abs, _fmt_rel, fmt_value
from quantbench.history.changepoints import ALPHA, PERMUTATIONS, detect_change_points, per_commit
from quantbench.results import metric_spec

#: Runs of the cell on this machine the value is judged against (the last ones, in commit order).
LOOKBACK = 10
#: Fewer runs than this on this machine: "insufficient data". Five keeps the median and the MAD from
#: resting on two or three runs; the MAD of so few is a noisy scale (in the heavy-tailed noise model of
#: docs/history.md a run from the window's own distribution lies past z 5 in about 4 % of windows of 5
#: runs, 1 % of windows of 10), and the policy's threshold is then what still guards.
MIN_HISTORY = 5
#: How far outside the window's spread (robust z, worse direction) a change must lie. 5, conbench's
#: default for its trimmed estimators: a window of 10 gives a noisy MAD, and a smaller z adds false
#: failures in noisy cells (PyTorch dynamic int8, 10 % a run: 3.2 % of unchanged runs fail at 4, 2.5 % at
#: 5; scripts/history_gate_study.py).
Z_THRESHOLD = 5.0
#: Commits on each side of a step the change-point test asks for here. The history's own default (5,
#: changepoints.MIN_SIZE) would see a step only after 5 commits at its new level; the gate wants it sooner,
#: and a step of one or two runs is the z-score's to judge. At 3 the tuning histories still had no false
#: change point at alpha 0.02 (docs/history.md, "Tuning").
HEAD_MIN_SIZE = 3
#: The normal distribution's sd over its MAD, and over its mean absolute deviation.
MAD_TO_SD = 1.4826
MEAN_AD_TO_SD = 1.2533
_EPS = 1e-12


@dataclass(frozen=True)
class Spread:
    """The window's centre (median) and robust scale (an estimate of its sd), and how the scale was had."""

    n: int
    center: float
    scale: float
    method: str  # "MAD", "mean absolute deviation" or "no spread"


def robust_spread(values: Sequence[float]) -> Spread:
    """Median and MAD-based scale of ``values`` (see the module docstring for the fallbacks)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("robust_spread needs at least one value")
    center = float(np.median(array))
    deviations = np.abs(array - center)
    mad = float(np.median(deviations))
    if mad > 0:
        return Spread(array.size, center, MAD_TO_SD * mad, "MAD")
    mean_ad = float(np.mean(deviations))
    if mean_ad > 0:
        return Spread(array.size, center, MEAN_AD_TO_SD * mean_ad, "mean absolute deviation")
    return Spread(array.size, center, 0.0, "no spread")


def worse_z(value: float, spread: Spread, better: str) -> float:
    """How many robust sds ``value`` lies from the window's median, positive in the worse direction;
    +-inf off a window without spread, 0 on it."""
    delta = value - spread.center
    worse = delta if better == "lower" else -delta
    if spread.scale > 0:
        return worse / spread.scale
    return 0.0 if abs(worse) <= _EPS * max(1.0, abs(spread.center)) else math.copysign(math.inf, worse)


@dataclass(frozen=True)
class HeadStep:
    """The change point where the level of this run began (in the window plus this run, per commit)."""

    commit: str  # the first commit at the new level
    commits_before: int  # how many commits before this run's commit it began
    mean_before: float
    mean_after: float
    change: float  # in the rule's mode (relative or absolute), of the level, not of this run
    interval: tuple[float, float]  # 95 % interval of ``change`` (Welch on the two segments)
    rel_step: float
    p_value: float
    n_before: int  # commits
    n_after: int
    verdict: str  # regression / improvement / pass (not past the threshold)

    def to_dict(self) -> dict:
        return {"commit": self.commit, "commits_before": self.commits_before, "mean_before": self.mean_before,
                "mean_after": self.mean_after, "change": self.change, "interval": list(self.interval),
                "rel_step": self.rel_step, "p_value": self.p_value, "commits_before_step": self.n_before,
                "commits_at_new_level": self.n_after, "verdict": self.verdict}


def _past(change: float, *, rule: Rule, better: str, delta: float) -> tuple[bool, bool]:
    """(worse past the threshold, better past the threshold) for a change of ``delta`` in the metric's unit."""
    worse_by = change if better == "lower" else -change
    big_enough = abs(delta) >= rule.min_delta
    return (worse_by > rule.threshold + _EPS and big_enough, -worse_by > rule.threshold + _EPS and big_enough)


def head_step(history: Sequence[float], commits: Sequence[str], current: float, current_commit: str, *,
              rule: Rule, metric: str, min_size: int = HEAD_MIN_SIZE) -> HeadStep | None:
    """The last change point of the window plus this run, per commit, when this run is on its new level;
    None when there is none (or too few commits to test: ``2 * min_size``)."""
    order, means, errors = per_commit([*history, current], [*commits, current_commit])
    if len(order) < 2 * min_size:
        return None
    found = detect_change_points(means, std_errors=errors, min_size=min_size, alpha=ALPHA, permutations=PERMUTATIONS)
    head = order.index(current_commit)
    points = [cp for cp in found if cp.index <= head]
    if not points:
        return None
    cp = points[-1]
    if abs(current - cp.mean_after) >= abs(current - cp.mean_before):
        return None  # this run is not on the new level (it came back, or sits between)
    better = rule.better(metric)
    change = change_of(cp.mean_before, cp.mean_after, rule.mode)
    if rule.mode == ABSOLUTE and metric_spec(metric).kind not in SAMPLED_KINDS:
        interval = (cp.rel_step_interval[0] * abs(cp.mean_before), cp.rel_step_interval[1] * abs(cp.mean_before))
    else:
        interval = cp.rel_step_interval
    worse, improved = _past(change, rule=rule, better=better, delta=cp.step)
    return HeadStep(commit=order[cp.index], commits_before=head - cp.index, mean_before=cp.mean_before,
                    mean_after=cp.mean_after, change=change, interval=(float(interval[0]), float(interval[1])),
                    rel_step=cp.rel_step, p_value=cp.p_value, n_before=cp.n_before, n_after=cp.n_after,
                    verdict=R.REGRESSION if worse else R.IMPROVEMENT if improved else R.PASS)


@dataclass(frozen=True)
class Judgement:
    """What the gate makes of one cell x metric against its history."""

    verdict: str
    history_runs: int  # runs of this cell on this machine (before the window cut)
    window: int  # runs judged against (the last ``lookback``)
    spread: Spread | None
    z: float | None  # positive: worse
    change: float | None  # against the window's median, or the step's change when the step decided
    baseline: float | None  # the window's median, or the level before the step when the step decided
    interval: tuple[float, float] | None  # the step's interval when the step decided
    p_value: float | None  # the step's permutation p-value when the step decided
    step: HeadStep | None
    mde: float | None  # smallest worsening (relative) this window lets the gate call
    by_step: bool
    note: str


def short_commit(commit: str) -> str:
    return commit[:12] if len(commit) > 12 and all(c in "0123456789abcdef" for c in commit.lower()) else commit


def _fmt(change: float, rule: Rule, metric: str) -> str:
    return _fmt_abs(change, metric) if rule.mode == ABSOLUTE else _fmt_rel(change)


def _describe_step(step: HeadStep, rule: Rule, metric: str) -> str:
    when = ("at this run's commit" if step.commits_before == 0 else
            f"{step.commits_before} commit{'s' if step.commits_before > 1 else ''} before this run")
    low, high = step.interval
    ci_fmt = _fmt_rel if rule.mode != ABSOLUTE or metric_spec(metric).kind in SAMPLED_KINDS else \
        (lambda x: _fmt_abs(x, metric))
    return (f"a new level since commit {short_commit(step.commit)} ({when}): "
            f"{fmt_value(step.mean_before, metric)} -> {fmt_value(step.mean_after, metric)}, "
            f"{_fmt(step.change, rule, metric)} [{ci_fmt(low)}, {ci_fmt(high)}], p {step.p_value:.3f}")


def fmt_z(z: float) -> str:
    return f"{z:+.1f}" if math.isfinite(z) else ("+inf" if z > 0 else "-inf")


def insufficient_note(count: int | str, min_history: int, *, metrics: int | None = None) -> str:
    what = f" for all its {metrics} gated metrics" if metrics else ""
    return f"{count} run{'' if count == 1 else 's'} of this cell on this machine{what}, the gate needs {min_history}"


def judge(current: float, history: Sequence[float], commits: Sequence[str], current_commit: str, *,
          metric: str, rule: Rule, history_runs: int | None = None, lookback: int = LOOKBACK,
          min_history: int = MIN_HISTORY, z_threshold: float = Z_THRESHOLD,
          min_size: int = HEAD_MIN_SIZE) -> Judgement:
    """Judge ``current`` against ``history`` (this machine's values of the cell, in commit order, this run
    left out; ``commits`` one per value). The last ``lookback`` are the window; ``history_runs`` (default:
    ``len(history)``) is what the insufficiency rule counts."""
    history = [float(v) for v in history]
    if len(commits) != len(history):
        raise ValueError(f"commits must have one entry per value: {len(commits)} for {len(history)} values")
    count = len(history) if history_runs is None else history_runs
    window, window_commits = history[-lookback:], list(commits)[-lookback:]
    empty = dict(spread=None, z=None, change=None, baseline=None, interval=None, p_value=None, step=None, mde=None,
                 by_step=False)
    if count < min_history or not window:
        return Judgement(R.INSUFFICIENT, count, len(window), note=insufficient_note(count, min_history), **empty)
    better = rule.better(metric)
    spread = robust_spread(window)
    z = worse_z(current, spread, better)
    change = change_of(spread.center, current, rule.mode)
    worse, improved = _past(change, rule=rule, better=better, delta=current - spread.center)
    step = head_step(window, window_commits, current, current_commit, rule=rule, metric=metric, min_size=min_size)
    mde = None
    if rule.mode != ABSOLUTE and spread.center:
        mde = max(rule.threshold, z_threshold * spread.scale / abs(spread.center))
    where = (f"over the last {len(window)} runs (median {fmt_value(spread.center, metric)}, robust sd "
             f"{fmt_value(spread.scale, metric)}{'' if spread.method == 'MAD' else ', ' + spread.method})")
    common = dict(history_runs=count, window=len(window), spread=spread, z=z, step=step, mde=mde)
    by_z = dict(change=change, baseline=spread.center, interval=None, p_value=None, by_step=False)
    if worse and z > z_threshold or improved and -z > z_threshold:
        outside = f"outside the history: z {fmt_z(z)} {where}"
        if worse:
            testable = len(set(window_commits) | {current_commit}) >= 2 * min_size
            began = (_describe_step(step, rule, metric) if step is not None and step.verdict == R.REGRESSION
                     else "no step before this run in the window: the change begins with this run"
                     if step is None and testable else "")
            note = "; ".join(p for p in (outside, began) if p)
            return Judgement(R.REGRESSION, **common, **by_z, note=note)
        return Judgement(R.IMPROVEMENT, **common, **by_z, note=outside)
    if step is not None and step.verdict in (R.REGRESSION, R.IMPROVEMENT):
        note = (f"{_describe_step(step, rule, metric)}; this run is on it, though alone it lies within the "
                f"window's spread (z {fmt_z(z)} {where}), which already holds runs of the new level")
        return Judgement(step.verdict, **common, change=step.change, baseline=step.mean_before,
                         interval=step.interval, p_value=step.p_value, by_step=True, note=note)
    if worse or improved:
        return Judgement(R.NOISE, **common, **by_z,
                         note=f"within the history's spread: z {fmt_z(z)} (the gate needs {z_threshold:g}) {where}")
    return Judgement(R.PASS, **common, **by_z, note="")
