"""What one unit came to: its run JSON from a node, or why it has none, and each cell's outcome.

Every planned cell of a unit ends in exactly one place: a benchmark in the unit's JSON (passed),
its ``failed`` or ``skipped`` list, or a failure the driver records because the node never
reported it (the node died and retries ran out, or pytest stopped before reaching it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quantbench.distributed.board import node_name
from quantbench.distributed.plan import Unit


@dataclass
class UnitOutcome:
    unit: str
    status: str  # "done": a node returned a result (pytest exit 0 or 1 or other); "lost": no result
    node: dict[str, Any] | None  # where it ran (lost: where it last ran)
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    attempts: int = 1
    nodes: list[dict[str, Any]] = field(default_factory=list)  # every node it started on
    run: dict[str, Any] | None = None  # the unit's pytest-benchmark JSON
    reason: str | None = None  # why there is no run, or why cells are missing from it
    log_tail: str = ""
    threads: dict[str, str] | None = None
    # Cells the node never reported, recorded as failed by the driver: {"test", "cell_id", "params", ...}
    missing: list[dict[str, Any]] = field(default_factory=list)
    # The driver's clock: when the task was submitted and when its result (or error) came back.
    # started - submitted (when a slot was free) and received - ended are Ray's dispatch overhead.
    submitted: float | None = None
    received: float | None = None

    @property
    def complete(self) -> bool:
        """Finished with no failed cell: what ``--resume`` skips."""
        if self.status != "done" or self.missing or not self.run:
            return False
        return not (self.run.get("quantbench") or {}).get("failed")

    def summary(self) -> dict[str, Any]:
        return {"unit": self.unit, "status": self.status, "node": node_name(self.node),
                "node_id": (self.node or {}).get("node_id"), "exit_code": self.exit_code,
                "started": self.started, "ended": self.ended, "attempts": self.attempts,
                "nodes_tried": [node_name(n) for n in self.nodes], "reason": self.reason, "threads": self.threads,
                "submitted": self.submitted, "received": self.received,
                # The end of pytest's output, where something went wrong (the journal keeps it always).
                **({"log_tail": self.log_tail} if self.log_tail and (self.exit_code or self.missing) else {})}


def from_result(unit: Unit, result: dict[str, Any], board_entry: dict[str, Any] | None) -> UnitOutcome:
    """A node's return value: cells missing from its JSON become failures naming the node and exit code."""
    node = result["node"]
    run = result.get("run") or _run_from_journal(result)
    outcome = UnitOutcome(unit.id, "done", node, result["started"], result["ended"], result["exit_code"],
                          attempts=(board_entry or {}).get("attempts", 1),
                          nodes=(board_entry or {}).get("nodes") or [node], run=run,
                          log_tail=result.get("log_tail", ""), threads=result.get("threads"))
    reported = _reported_keys(outcome.run)
    last_line = _last_line(outcome.log_tail)
    why = (f"not reported by node {node_name(node)} (pytest exit {result['exit_code']}"
           + (f": {last_line}" if last_line else "") + ")")
    outcome.missing = [_failed(cell, why, node) for cell in unit.cells if cell.key not in reported]
    if outcome.missing:
        outcome.reason = why
    return outcome


def _run_from_journal(result: dict[str, Any]) -> dict[str, Any] | None:
    """No run file from the node (pytest crashed, or skipped every cell so pytest-benchmark saved
    nothing): the cells its journal holds, with the node's machine_info."""
    records = result.get("journal") or []
    if not records:
        return None

    def plain(r):
        return {k: v for k, v in r.items() if k not in ("benchmark", "journal_version")}

    return {"machine_info": result.get("machine_info") or {"node": result["node"].get("hostname")},
            "commit_info": {}, "datetime": None, "version": None,
            "benchmarks": [r["benchmark"] for r in records if r.get("outcome") == "passed" and r.get("benchmark")],
            "quantbench": {"failed": [plain(r) for r in records if r.get("outcome") == "failed"],
                           "skipped": [plain(r) for r in records if r.get("outcome") == "skipped"]}}


def lost(unit: Unit, error: BaseException | str, board_entry: dict[str, Any] | None, *, why: str) -> UnitOutcome:
    """No result: the node died and retries ran out, or nothing could take the unit. Every cell fails."""
    entry = board_entry or {}
    node = entry.get("node")
    text = str(error).strip().splitlines()
    detail = text[0][:300] if text else type(error).__name__
    where = f"last on node {node_name(node)}" if node else "it never started on a node"
    reason = f"{why}; {where} after {entry.get('attempts', 0)} attempt(s) ({detail})"
    outcome = UnitOutcome(unit.id, "lost", node, entry.get("started"), None, None, attempts=entry.get("attempts", 0),
                          nodes=entry.get("nodes") or [], reason=reason)
    outcome.missing = [_failed(cell, reason, node) for cell in unit.cells]
    return outcome


def _failed(cell, reason: str, node: dict[str, Any] | None) -> dict[str, Any]:
    return {"test": cell.test, "cell_id": cell.cell_id, "params": cell.params, "outcome": "failed",
            "reason": reason, "node": node_name(node) if node else None}


def _reported_keys(run: dict[str, Any] | None) -> set[str]:
    if not run:
        return set()
    block = run.get("quantbench") or {}
    keys = {str(b.get("name")) for b in run.get("benchmarks") or []}
    keys |= {f"{r.get('test')}[{r.get('cell_id')}]" for r in [*(block.get("failed") or []),
                                                              *(block.get("skipped") or [])]}
    return keys


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
