"""The sweep's journal: each unit written as it arrives, so an interrupted sweep resumes.

The same ``results.jsonl`` a local run writes (one fsynced line per finished cell, with its
benchmark entry), each cell line naming its unit and node, followed by one ``"kind": "unit"``
line per unit: where it ran, its exit code and times, and its run file without the benchmarks
(those are in the cell lines). ``--resume`` rebuilds every unit that finished with no failed
cell from these lines and runs the rest again.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from quantbench.distributed.board import node_name
from quantbench.distributed.outcome import UnitOutcome
from quantbench.plugin.journal import Journal, read_journal


class SweepJournal:
    def __init__(self, path: Path, *, resume: bool):
        self._journal = Journal(path, resume=resume)
        self.path = path

    def write(self, outcome: UnitOutcome) -> None:
        node = node_name(outcome.node) if outcome.node else None
        run = outcome.run or {}
        write = uuid.uuid4().hex[:12]  # ties this unit's cell lines to its unit line (a torn write is ignored)
        block = run.get("quantbench") or {}
        for bench in run.get("benchmarks") or []:
            test, _, rest = str(bench.get("name")).partition("[")
            self._journal.append({"test": test, "cell_id": rest.rstrip("]"), "params": bench.get("params"),
                                  "outcome": "passed", "unit": outcome.unit, "node": node, "write": write,
                                  "benchmark": bench})
        for record in [*(block.get("failed") or []), *(block.get("skipped") or []), *outcome.missing]:
            self._journal.append({**record, "unit": outcome.unit, "node": record.get("node") or node,
                                  "write": write, "benchmark": None})
        meta = {k: v for k, v in run.items() if k != "benchmarks"} if outcome.run else None
        self._journal.append({"kind": "unit", "write": write,
                              **{k: v for k, v in vars(outcome).items() if k != "run"}, "run": meta})

    def close(self) -> None:
        self._journal.close()


def finished_units(path: Path) -> dict[str, UnitOutcome]:
    """unit id -> its last outcome, for units that finished with no failed cell (what --resume skips)."""
    benches: dict[str, list[dict[str, Any]]] = {}
    done: dict[str, UnitOutcome] = {}
    for record in read_journal(path):
        if record.get("kind") == "unit":
            fields = {k: v for k, v in record.items() if k not in ("kind", "journal_version", "run", "write")}
            outcome = UnitOutcome(**fields)
            if record.get("run") is not None:
                outcome.run = {**record["run"], "benchmarks": benches.get(record.get("write"), [])}
            if outcome.complete:
                done[outcome.unit] = outcome
            else:
                done.pop(outcome.unit, None)
        elif record.get("unit") and record.get("outcome") == "passed" and record.get("benchmark"):
            benches.setdefault(record.get("write"), []).append(record["benchmark"])
    return done
