"""results.jsonl: one line per finished cell, written as the cell ends.

Each line is flushed and fsynced, so a killed sweep keeps every cell it finished. ``--resume``
reads the journal back: cells that passed are not run again, and their benchmark entries are
put back into the final pytest-benchmark JSON, so it holds every cell exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from quantbench.errors import QuantbenchError

JOURNAL_VERSION = 1


def cell_key(test: str, cell_id: str) -> str:
    """What identifies a cell across runs: the benchmark function and the cell id."""
    return f"{test}[{cell_id}]"


class Journal:
    def __init__(self, path: Path, *, resume: bool):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            path.write_text("")  # a new run starts a new journal
        self._handle = open(path, "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps({"journal_version": JOURNAL_VERSION, **record}, default=str) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def read_journal(path: Path) -> Iterator[dict[str, Any]]:
    """Records in order; a torn last line (the process died mid-write) is ignored."""
    if not path.exists():
        raise QuantbenchError(f"--resume: no journal at {path}; run once without --resume first")
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                return
            raise QuantbenchError(f"{path}:{number}: corrupt journal line (not JSON)") from None


def finished(path: Path) -> dict[str, dict[str, Any]]:
    """cell key -> the last passed record with its benchmark entry."""
    done: dict[str, dict[str, Any]] = {}
    for record in read_journal(path):
        if "test" not in record:  # a `quantbench sweep` unit line: not a cell
            continue
        key = cell_key(record["test"], record["cell_id"])
        if record.get("outcome") == "passed" and record.get("benchmark"):
            done[key] = record
        else:
            done.pop(key, None)
    return done
