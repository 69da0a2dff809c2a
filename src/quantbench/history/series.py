"""A stored history as series: per cell x metric x machine fingerprint, one point per commit, with its
change points and current trend. What the trend page draws and its tables list.

::

    from quantbench.history import open_store
    from quantbench.history.series import build

    with open_store("reports/history.sqlite") as store:
        history = build(store)                                   # the gate's default metrics
    for s in history.series:
        for step in s.steps:
            print(s.cell, s.metric, s.machine, step.commit[:7], f"{step.rel_step:+.1%}", step.verdict)

* **Commit order.** The page's x axis is every commit the store holds, in the order the store lists
  runs (commit time, first parent: :meth:`Store.runs <quantbench.history.store.Store.runs>`), so the
  machines' lines share one axis. A run without a commit id stands alone as ``run N``.
* **One point per commit.** Runs of one commit on one machine are averaged (:func:`per_commit
  <quantbench.history.changepoints.per_commit>`), which is what the change-point detector reads. The
  point's interval is the 95 % interval of that mean over the runs (Student t, n - 1 degrees of freedom:
  the noise lies between runs on these machines) or, for a commit with one run, the run's own stored
  95 % interval (``M_ci95``), else ±1.96 of its stored standard error, else none.
* **Change points** per series, E-divisive means (:func:`detect_change_points
  <quantbench.history.changepoints.detect_change_points>`) on the per-commit means, each classified
  (regression or improvement) with the metric's direction from :data:`quantbench.results.METRICS`.
* **The current trend** (:func:`current_trend <quantbench.history.trend.current_trend>`): Mann-Kendall and
  Theil-Sen since the last step.

Which metrics: by default the ones the gate judges by default (:data:`DEFAULT_METRICS`, kept equal
to ``quantbench.gate.policy.DEFAULT_RULES`` by a test; the history sits below the gate and cannot
import it), plus lm-eval's figures; globs choose others (``--metric 'latency_*'``).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from scipy import stats

from quantbench.history.changepoints import UNCHANGED, classify, detect_change_points, per_commit
from quantbench.history.trend import Trend, current_trend, min_points
from quantbench.results import LM_EVAL_PREFIX, metric_spec

#: The metrics the gate judges by default (``quantbench.gate.policy.DEFAULT_RULES``, skips left out).
DEFAULT_METRICS = (
    "latency_p50_ms", "latency_p95_ms", "throughput_samples_per_s", "peak_rss_mb", "cuda_peak_allocated_mb",
    "disk_size_mb", "accuracy", "f1_macro", "agreement_with_fp32", "balanced_accuracy", "dp_difference",
    "eo_difference", "flip_rate", "ttft_p50_ms", "tpot_p50_ms", "decode_tokens_per_s", "total_tokens_per_s",
    "perplexity", "kl_divergence", "top1_agreement", "capacity_qps",
)
#: Patterns the gate judges by default too (its lm-eval rules), and those it skips.
DEFAULT_PATTERNS = (f"{LM_EVAL_PREFIX}*",)
DEFAULT_EXCLUDED = (f"{LM_EVAL_PREFIX}*_delta",)
#: Two-sided 95 %: the normal quantile for a stored standard error.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Point:
    """One commit of one series: the mean of its runs, with a 95 % interval (see the module docstring)."""

    commit: str
    x: int  # position on the history's commit axis
    value: float
    low: float | None
    high: float | None
    runs: tuple[float, ...]
    interval_from: str  # "runs", "stored ci95", "stored se" or "none"


@dataclass(frozen=True)
class Step:
    """A change point of a series, at ``commit`` (the first commit at the new level)."""

    commit: str
    x: int
    index: int  # position in the series' points
    step: float
    rel_step: float
    rel_step_interval: tuple[float, float]
    mean_before: float
    mean_after: float
    p_value: float
    verdict: str  # regression | improvement | unchanged


@dataclass(frozen=True)
class Series:
    cell: str
    metric: str
    machine: str
    unit: str
    better: str
    points: tuple[Point, ...]
    steps: tuple[Step, ...]
    trend: Trend | None
    #: The commit the current trend is measured from (None without a trend).
    trend_since: str | None
    #: regression | improvement for a significant trend; unchanged otherwise.
    trend_verdict: str

    @property
    def commits(self) -> list[str]:
        return [p.commit for p in self.points]

    def trend_text(self) -> str:
        """One line: the current trend, or why there is none."""
        if self.trend is None:
            since = f" since {short(self.steps[-1].commit)}" if self.steps else ""
            return f"no trend tested: too few commits{since} (a trend needs {min_points()})"
        t = self.trend
        lo, hi = t.rel_slope_interval
        since = short(self.trend_since or "")
        if not t.significant:
            return f"no trend since {since} ({t.stop - t.start} commits, Mann-Kendall p = {t.p_value:.2f})"
        return (f"{'rising' if t.slope > 0 else 'falling'} {_pct(t.rel_slope)}/commit since {since} "
                f"(95 % [{_pct(lo)}, {_pct(hi)}], p = {t.p_value:.3f}): {self.trend_verdict}")


@dataclass(frozen=True)
class History:
    """Everything the trend page shows."""

    where: str
    commits: tuple[str, ...]  # the commit axis, in store order
    commit_times: dict[str, Any]
    branches: dict[str, str | None]
    machines: tuple[dict[str, Any], ...]  # id, label, runs (store order: first seen)
    runs: int
    series: tuple[Series, ...]
    metrics: tuple[str, ...] = field(default=())

    def steps(self) -> list[tuple[Series, Step]]:
        return [(s, step) for s in self.series for step in s.steps]


def short(commit: str) -> str:
    """A commit's short id (7 hex digits); a ``run N`` key as it is."""
    return commit if commit.startswith("run ") else commit[:7]


def _pct(share: float) -> str:
    return "—" if share is None or not math.isfinite(share) else f"{share * 100:+.1f} %"


def commit_key(commit_id: str | None, run_id: int) -> str:
    return commit_id or f"run {run_id}"


def wanted(metric: str, patterns: Sequence[str] | None = None) -> bool:
    """Is ``metric`` on the page: one of ``patterns`` (globs), by default the gate's default metrics."""
    if patterns:
        return any(fnmatch.fnmatchcase(metric, p) for p in patterns)
    if any(fnmatch.fnmatchcase(metric, p) for p in DEFAULT_EXCLUDED):
        return False
    return metric in DEFAULT_METRICS or any(fnmatch.fnmatchcase(metric, p) for p in DEFAULT_PATTERNS)


def _interval(values: Sequence[Any]) -> tuple[float | None, float | None, str]:
    """95 % interval of a commit's point (``values``: the StoredValue rows of its runs)."""
    if len(values) > 1:
        xs = [v.value for v in values]
        mean = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))
        half = stats.t.ppf(0.975, len(xs) - 1) * sd / math.sqrt(len(xs))
        return mean - half, mean + half, "runs"
    (v,) = values
    if v.ci_low is not None and v.ci_high is not None:
        return v.ci_low, v.ci_high, "stored ci95"
    if v.se is not None:
        return v.value - Z95 * v.se, v.value + Z95 * v.se, "stored se"
    return None, None, "none"


def series_of(rows: Sequence[Any], *, cell: str, metric: str, machine: str, x_of: dict[str, int],
              seed: int = 0) -> Series | None:
    """One series from one machine's stored values of ``cell`` x ``metric`` (commit order); None when empty."""
    if not rows:
        return None
    keys = [commit_key(v.commit_id, v.run_id) for v in rows]
    commits, means, errors = per_commit([v.value for v in rows], keys)
    by_commit: dict[str, list[Any]] = {}
    for key, row in zip(keys, rows):
        by_commit.setdefault(key, []).append(row)
    points = []
    for commit, mean in zip(commits, means):
        low, high, source = _interval(by_commit[commit])
        points.append(Point(commit=commit, x=x_of[commit], value=float(mean), low=low, high=high,
                            runs=tuple(v.value for v in by_commit[commit]), interval_from=source))
    found = detect_change_points(means, std_errors=errors, seed=seed)
    steps = tuple(Step(commit=commits[cp.index], x=x_of[commits[cp.index]], index=cp.index, step=cp.step,
                       rel_step=cp.rel_step, rel_step_interval=cp.rel_step_interval, mean_before=cp.mean_before,
                       mean_after=cp.mean_after, p_value=cp.p_value, verdict=classify(cp.step, metric))
                  for cp in found)
    trend = current_trend(means, found)
    verdict = classify(trend.slope, metric) if trend is not None and trend.significant else UNCHANGED
    spec = metric_spec(metric)
    return Series(cell=cell, metric=metric, machine=machine, unit=spec.unit if spec else rows[0].unit,
                  better=spec.better if spec else rows[0].direction, points=tuple(points), steps=steps, trend=trend,
                  trend_since=commits[trend.start] if trend is not None else None, trend_verdict=verdict)


def build(store: Any, *, metrics: Sequence[str] | None = None, cells: Sequence[str] | None = None,
          machines: Iterable[str] | None = None) -> History:
    """The series of ``store`` (an open :class:`~quantbench.history.store.Store`). ``metrics`` and ``cells``
    are globs (default: the gate's default metrics, every cell; a cell's exact name matches itself, though
    its brackets are glob syntax); ``machines`` are fingerprint ids."""
    runs = store.runs()
    axis: dict[str, int] = {}
    times: dict[str, Any] = {}
    branches: dict[str, str | None] = {}
    for run in runs:
        key = commit_key(run.commit_id, run.id)
        if key not in axis:
            axis[key] = len(axis)
            times[key] = run.commit_time or run.run_time
            branches[key] = run.branch
    keep_machines = set(machines) if machines else None
    known = [m for m in store.machines() if m["runs"] and (keep_machines is None or m["id"] in keep_machines)]
    pairs = [(cell, metric) for cell, metric in store.cells() if wanted(metric, metrics)
             and (not cells or any(cell == p or fnmatch.fnmatchcase(cell, p) for p in cells))]
    order = {m["id"]: k for k, m in enumerate(known)}
    series = []
    for cell, metric in pairs:
        rows_by_machine: dict[str, list[Any]] = {}
        for row in store.values(cell, metric):
            if row.machine_id in order:
                rows_by_machine.setdefault(row.machine_id, []).append(row)
        for machine in sorted(rows_by_machine, key=order.__getitem__):
            found = series_of(rows_by_machine[machine], cell=cell, metric=metric, machine=machine, x_of=axis)
            if found is not None:
                series.append(found)
    shown = tuple(dict.fromkeys(s.metric for s in series))
    return History(where=store.where, commits=tuple(axis), commit_times=times, branches=branches,
                   machines=tuple({"id": m["id"], "label": m["label"], "runs": m["runs"]} for m in known),
                   runs=len(runs), series=tuple(series), metrics=shown)
