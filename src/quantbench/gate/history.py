"""``quantbench gate --history DB RUN.json``: judge a run against its machine's history, cell by cell.

For each cell x gated metric of the run (the policy's rules, as the two-run gate), the values of the same
cell and metric stored for runs on **the run's own machine fingerprint** (history/fingerprint.py), in
commit order, are read from the store; the last ``lookback`` of them are the window the run is judged
against (gate/lookback.py: a robust lookback z-score, a change point at the run's level, and the policy's
threshold). Runs from other fingerprints are not compared, only counted, and the count is reported. A
run already stored (the same JSON: a sweep run with ``--history``) is left out of its own history, and
``since`` (``--since COMMIT``) starts the history at a commit whose step was accepted.

::

    from quantbench.gate.history import gate_history

    result = gate_history("results.json", "reports/history.sqlite")   # or an open Store, a policy
    print(result.render_table()); raise SystemExit(result.exit_code)

Returns a :class:`HistoryGateResult`: a :class:`~quantbench.gate.result.GateResult` (same rows, table,
Markdown, exit code) whose JSON adds a ``history`` block (database, machine, window, runs ignored) and
per row the z-score, the window and the step found.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from quantbench.errors import QuantbenchError
from quantbench.gate import result as R
from quantbench.gate.lookback import (HEAD_MIN_SIZE, LOOKBACK, MIN_HISTORY, Z_THRESHOLD, Judgement, fmt_z,
                                      insufficient_note, judge)
from quantbench.gate.policy import Policy, load_policy
from quantbench.gate.render import _finite, to_dict
from quantbench.results import CELL_PARAMS, METRICS, BenchmarkRecord, Run, load_run, parse_run


@dataclass
class HistoryGateResult(R.GateResult):
    """A gate result whose baseline is the history: ``history`` describes the window, ``details`` holds one
    dict per row (in ``rows`` order) with the figures behind its verdict."""

    history: dict[str, Any] = field(default_factory=dict)
    details: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = to_dict(self)
        data["history"] = _finite(self.history)
        data["rows"] = [{**row, **_finite(extra)} for row, extra in zip(data["rows"], self.details)]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"


def _check(lookback: int, min_history: int, z_threshold: float) -> None:
    if not isinstance(min_history, int) or min_history < 3:
        raise QuantbenchError(f"--min-history {min_history!r}: must be an integer >= 3 (a median and a spread "
                              "need a few runs)")
    if not isinstance(lookback, int) or lookback < min_history:
        raise QuantbenchError(f"--lookback {lookback!r}: must be an integer >= --min-history ({min_history})")
    if not (isinstance(z_threshold, (int, float)) and z_threshold > 0):
        raise QuantbenchError(f"--z {z_threshold!r}: must be a number > 0")


def _read(current: str | Path | Run | Mapping[str, Any]) -> Run:
    if isinstance(current, Run):
        return current
    if isinstance(current, Mapping):
        return parse_run(dict(current))
    return load_run(current)


def _display(test: str, cell_id: str) -> str:
    return f"{test}[{cell_id}]"


def _row(judgement: Judgement, *, record: BenchmarkRecord, metric: str, value: float, rule, policy: Policy
         ) -> R.Row:
    outcome = {R.REGRESSION: R.FAIL, R.INSUFFICIENT: R.FAIL if policy.on_insufficient == "fail" else R.WARN}
    evidence = (f"history: {judgement.window} of {judgement.history_runs} runs"
                + ("" if judgement.z is None else f", z {fmt_z(judgement.z)}")
                + (", change point" if judgement.by_step else ""))
    return R.Row(cell=_display(record.test, record.cell_id), key=record.key, metric=metric,
                 verdict=judgement.verdict, outcome=outcome.get(judgement.verdict, R.OK),
                 baseline=judgement.baseline, current=value, change=judgement.change, mode=rule.mode,
                 threshold=rule.threshold, better=rule.better(metric), p_value=judgement.p_value,
                 ci=judgement.interval, note=judgement.note, mde=judgement.mde,
                 noise=(judgement.spread.scale / abs(judgement.spread.center)
                        if judgement.spread and judgement.spread.center else None),
                 evidence=evidence)


def _detail(judgement: Judgement, *, window: list, others: int) -> dict[str, Any]:
    spread = judgement.spread
    return {"z": judgement.z, "history_runs": judgement.history_runs, "other_machine_runs": others,
            "window": None if spread is None else {
                "runs": judgement.window, "median": spread.center, "robust_sd": spread.scale,
                "scale": spread.method, "first_run": window[0].run_id, "last_run": window[-1].run_id,
                "first_commit": window[0].commit_id, "last_commit": window[-1].commit_id},
            "change_point": judgement.step.to_dict() if judgement.step else None,
            "decided_by": None if judgement.verdict in (R.INSUFFICIENT, R.PASS) else
            "change point" if judgement.by_step else "z-score"}


def _whole_cell(judged: list[tuple[R.Row, dict[str, Any], int, int]], *, min_history: int
                ) -> tuple[R.Row, dict[str, Any], int, int]:
    """One row for a cell none of whose gated metrics has enough history (a new cell, a new machine)."""
    here = sorted({n for _, _, n, _ in judged})
    there = max(n for *_, n in judged)
    count = here[0] if len(here) == 1 else f"{here[0]}-{here[-1]}"
    metrics = [row.metric for row, *_ in judged]
    first = judged[0][0]
    note = (insufficient_note(count, min_history, metrics=len(metrics))
            + (f"; {there} on other machines ignored" if there else ""))
    row = R.Row(cell=first.cell, key=first.key, metric=None, verdict=R.INSUFFICIENT, outcome=first.outcome,
                note=note, evidence=f"history: {here[-1]} runs")
    detail = {"z": None, "history_runs": here[-1], "other_machine_runs": there, "window": None,
              "change_point": None, "decided_by": None, "metrics": metrics}
    return row, detail, here[-1], there


def _ignored_line(counts: Counter, machine: str) -> str:
    total = sum(counts.values())
    listed = "; ".join(f"{m}: {n} run{'s' if n > 1 else ''}" for m, n in counts.most_common())
    return (f"{total} stored run{'s' if total > 1 else ''} from {len(counts)} other machine"
            f"{'s' if len(counts) > 1 else ''} ignored ({listed}): only runs of this run's machine {machine} count")


def gate_history(current: str | Path | Run | Mapping[str, Any], store: Any,
                 policy: str | Path | Mapping[str, Any] | Policy | None = None, *, lookback: int = LOOKBACK,
                 min_history: int = MIN_HISTORY, z_threshold: float = Z_THRESHOLD,
                 since: str | None = None) -> HistoryGateResult:
    """Judge ``current`` (a run file, its JSON or a parsed ``Run``) against ``store`` (an open
    :class:`~quantbench.history.store.Store`, or a path or URL to open) under ``policy``. ``since`` (a commit
    or its prefix) starts the history at that commit's first run on this machine: a step accepted there is no
    longer judged (the runs before it are left out)."""
    _check(lookback, min_history, z_threshold)
    if since is not None and not (isinstance(since, str) and since.strip()):
        raise QuantbenchError(f"--since {since!r}: give a commit (or the start of one)")
    resolved = load_policy(policy)
    run = _read(current)
    options = dict(lookback=lookback, min_history=min_history, z_threshold=z_threshold, since=since)
    if isinstance(store, (str, Path)):
        from quantbench.history import open_store

        with open_store(store) as opened:
            return _gate(run, opened, resolved, **options)
    return _gate(run, store, resolved, **options)


def _since(own: list, since: str, machine: str, where: str) -> tuple[set[int], str]:
    """The ids of this machine's runs from the first run of commit ``since`` on (runs are in commit order)."""
    first = next((k for k, r in enumerate(own) if (r.commit_id or "").startswith(since)), None)
    if first is None:
        raise QuantbenchError(f"--since {since}: no run of a commit starting with {since!r} on machine {machine} "
                              f"in {where} (quantbench history list --machine {machine})")
    return {r.id for r in own[first:]}, str(own[first].commit_id)


def _gate(run: Run, store: Any, policy: Policy, *, lookback: int, min_history: int,
          z_threshold: float, since: str | None) -> HistoryGateResult:
    from quantbench.history.ingest import record_of

    record = record_of(run, source=str(run.path) if run.path else None)
    machine = record.fingerprint
    warnings: list[str] = []
    if machine.missing:
        warnings.append(f"this run did not record {', '.join(machine.missing)}: its machine id {machine.id} "
                        "matches only runs that lack the same fields")
    stored = store.runs()
    itself = {r.id for r in stored if r.content_hash == record.content_hash}
    if itself:
        warnings.append(f"this run is stored in {store.where} as run {min(itself)}: left out of its own history")
    others = Counter(r.machine_id for r in stored if r.machine_id != machine.id)
    own_stored = [r for r in stored if r.machine_id == machine.id and r.id not in itself]
    kept, since_commit = None, None
    if since is not None:
        kept, since_commit = _since(own_stored, since, machine.id, store.where)
        warnings.append(f"--since {since}: the history starts at commit {since_commit}; "
                        f"{len(own_stored) - len(kept)} earlier run(s) of this machine left out")
    own_runs = len(own_stored) if kept is None else len(kept)
    if others:
        warnings.append(_ignored_line(others, machine.id))
    if not own_runs:
        warnings.append(f"no {'other ' if itself else ''}run of this machine ({machine.id}: {machine.label}) in "
                        f"{store.where}{' since that commit' if since else ''}: every cell has insufficient history")
    index: dict[tuple, BenchmarkRecord] = {}
    for cell in run.records:
        if cell.key in index:
            warnings.append(f"cell {_display(cell.test, cell.cell_id)} appears more than once; the last one is judged")
        index[cell.key] = cell
    current_commit = record.commit_id or "this run"
    rows: list[R.Row] = []
    details: list[dict[str, Any]] = []
    for key, cell in index.items():
        judged: list[tuple[R.Row, dict[str, Any], int, int]] = []  # row, detail, runs here, runs elsewhere
        for metric in [*(m for m in METRICS if m in cell.metrics), *(m for m in cell.metrics if m not in METRICS)]:
            rule = policy.rule_for(metric=metric, test=cell.test, cell_id=cell.cell_id, params=cell.params)
            if rule is None:
                continue
            values = store.values(key, metric)
            own = [v for v in values if v.machine_id == machine.id and v.run_id not in itself
                   and (kept is None or v.run_id in kept)]
            elsewhere = sum(1 for v in values if v.machine_id != machine.id)
            window = own[-lookback:]
            judgement = judge(cell.metrics[metric], [v.value for v in window],
                              [v.commit_id or f"run {v.run_id}" for v in window], current_commit, metric=metric,
                              rule=rule, history_runs=len(own), lookback=lookback, min_history=min_history,
                              z_threshold=z_threshold)
            row = _row(judgement, record=cell, metric=metric, value=cell.metrics[metric], rule=rule, policy=policy)
            if judgement.verdict == R.INSUFFICIENT and elsewhere:
                row = replace(row, note=f"{row.note}; {elsewhere} on other machines ignored")
            judged.append((row, _detail(judgement, window=window, others=elsewhere), len(own), elsewhere))
        if len(judged) > 1 and all(row.verdict == R.INSUFFICIENT for row, *_ in judged):
            judged = [_whole_cell(judged, min_history=min_history)]
        rows += [row for row, *_ in judged]
        details += [detail for _, detail, *_ in judged]
    stored_cells = {name for name, _ in store.cells(machine=machine.id)} if run.failed else set()
    for entry in run.failed:
        test = str(entry.get("test", "")).split("[", 1)[0]
        cell_id = str(entry.get("cell_id") or "")
        name = _display(test, cell_id)
        known = name in stored_cells
        params = entry.get("params") or {}
        rows.append(R.Row(cell=name, key=(test, *(params.get(p) for p in CELL_PARAMS)), metric=None,
                          verdict=R.FAILED, outcome=R.FAIL if known else R.WARN,
                          note=str(entry.get("reason") or "failed") if known else
                          f"a cell this machine's history does not hold failed: "
                          f"{entry.get('reason') or 'no reason given'}"))
        details.append({"history_runs": None, "other_machine_runs": None, "z": None, "window": None,
                        "change_point": None, "decided_by": None})
    history = {"database": store.where, "machine": machine.id, "machine_label": machine.label,
               "machine_runs": own_runs, "other_machine_runs": dict(others), "left_out_run": min(itself) if itself
               else None, "lookback": lookback, "min_history": min_history, "z_threshold": z_threshold,
               "change_point_min_size": HEAD_MIN_SIZE, "commit": record.commit_id, "since": since_commit}
    label = (f"history {store.where}: the last {lookback} runs of each cell on machine {machine.id} "
             f"({own_runs} run{'' if own_runs == 1 else 's'} of it stored"
             + (f" since commit {since_commit[:12]})" if since_commit else ")"))
    return HistoryGateResult(rows=rows, policy=policy, baseline_label=label,
                             current_label=str(run.path or "current"), warnings=warnings, history=history,
                             details=details)
