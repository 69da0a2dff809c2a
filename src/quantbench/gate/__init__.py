"""Regression gate: compare a run against a baseline under a policy; exit 1 on a regression.

Contract for callers (the CLI, the pytest plugin's ``--gate-baseline``, scripts)::

    from quantbench.gate import gate_paths

    result = gate_paths(baseline, current, policy=None, *, strict_machine=False,
                        allow_missing=False, baseline_dir=None)

* ``baseline``: a run file path, a :class:`~quantbench.results.Run`, or ``"name:NAME"`` for a
  baseline saved with ``quantbench baseline save`` (looked up in ``baseline_dir``).
* ``current``: a run file path or a ``Run``.
* ``policy``: None (built-in defaults), a policy YAML path, a suite YAML path with a ``gates:``
  key, a mapping, or a :class:`Policy` (see :func:`load_policy`).
  A loaded suite's block works too: ``load_policy(suite.gates or None, where="suites/ci.yaml: gates")``;
  an empty block means the built-in defaults.
* ``strict_machine``: a baseline from a different machine fails instead of warning.
* ``allow_missing``: a baseline cell or metric absent from the current run warns instead of failing.
* ``unresolved``: "fail" makes a timing the rounds cannot resolve (verdict ``unresolved``) fail the
  gate; default: the policy's ``on_unresolved`` (warn).

Returns a :class:`GateResult`: ``.exit_code`` (0 pass, 1 regression), ``.passed``, ``.rows``,
``.warnings``, ``.render_table()``, ``.to_markdown()``, ``.to_json()``. Bad input (unreadable
run, invalid policy, unknown baseline name) raises :class:`~quantbench.errors.QuantbenchError`
with a one-line message naming the file and key; the CLI turns it into exit code 2.
Nothing is printed or written: the caller decides where the table and summaries go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from quantbench.gate.baseline import baseline_path, list_baselines, save_baseline
from quantbench.gate.compare import gate_runs
from quantbench.gate.policy import DEFAULT_RULES, Policy, Rule, load_policy
from quantbench.gate.result import GateResult, Row
from quantbench.results import Run, load_run

__all__ = ["gate_paths", "gate_runs", "GateResult", "Row", "Policy", "Rule", "DEFAULT_RULES",
           "load_policy", "save_baseline", "list_baselines", "baseline_path"]

BASELINE_NAME_PREFIX = "name:"


def _run(source: str | Path | Run, *, baseline_dir: str | Path | None = None) -> Run:
    if isinstance(source, Run):
        return source
    if isinstance(source, str) and source.startswith(BASELINE_NAME_PREFIX):
        return load_run(baseline_path(source[len(BASELINE_NAME_PREFIX):], directory=baseline_dir))
    return load_run(source)


def gate_paths(baseline: str | Path | Run, current: str | Path | Run,
               policy: str | Path | Mapping[str, Any] | Policy | None = None, *,
               strict_machine: bool = False, allow_missing: bool = False,
               baseline_dir: str | Path | None = None, unresolved: str | None = None) -> GateResult:
    """Load both runs and the policy, then :func:`gate_runs` (see the module docstring).

    ``unresolved`` ("warn" or "fail") overrides the policy's ``on_unresolved``."""
    resolved = load_policy(policy)
    if unresolved is not None:
        resolved = resolved.replace(on_unresolved=unresolved)
    return gate_runs(_run(baseline, baseline_dir=baseline_dir), _run(current), policy=resolved,
                     strict_machine=strict_machine, allow_missing=allow_missing)
