"""Live progress: where each unit runs and how many of its cells are done, one bar per unit.

Node tasks report to a small actor (no CPU, pinned to the driver's node, so losing a timing node
never loses it): ``started`` when a unit starts on a node (again on a retry, with the new node),
``progress`` as the unit's pytest journals each cell. The same actor carries Ctrl-C the other way:
``stop``, which every node task polls. The driver reads a snapshot each turn of
its loop and draws it. Reports are fire-and-forget: progress is for people; results travel in
the task's return value, never through the board.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Board:
    """The actor's class (made remote by :func:`start_board`)."""

    def __init__(self) -> None:
        self.units: dict[str, dict[str, Any]] = {}
        self._stop = False

    def stop(self) -> None:
        """Ctrl-C in the driver: every node task kills its pytest and returns."""
        self._stop = True

    def stopped(self) -> bool:
        return self._stop

    def started(self, unit: str, node: dict[str, Any], at: float) -> None:
        previous = self.units.get(unit)
        attempts = (previous or {}).get("attempts", 0) + 1
        nodes = [*(previous or {}).get("nodes", []), node]
        self.units[unit] = {"node": node, "nodes": nodes, "started": at, "done": 0, "attempts": attempts}

    def progress(self, unit: str, done: int) -> None:
        if unit in self.units:
            self.units[unit]["done"] = done

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return self.units


def start_board(ray):
    """The board actor, on the driver's node (``ray.io/node-id`` label), with no CPU."""
    node_id = ray.get_runtime_context().get_node_id()
    actor = ray.remote(num_cpus=0, max_restarts=-1)(Board)
    return actor.options(label_selector={"ray.io/node-id": node_id}).remote()


def node_name(node: dict[str, Any] | None) -> str:
    """``host/1a2b3c4d``: the host name with the start of the Ray node id (nodes can share a host)."""
    if not node:
        return "?"
    return f"{node.get('hostname') or node.get('ip')}/{str(node.get('node_id', ''))[:8]}"


class Progress:
    """One bar per unit. On a terminal the block is redrawn in place; elsewhere (a log, ``ray job
    logs``) each change prints one line."""

    WIDTH = 20

    def __init__(self, units: list[tuple[str, int]], stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.order = [u for u, _ in units]
        self.total = dict(units)
        self.state: dict[str, dict[str, Any]] = {u: {"status": "waiting", "done": 0, "node": None} for u in self.order}
        self._drawn = 0
        self._last_line: dict[str, str] = {}
        self.started = time.monotonic()

    def update(self, unit: str, **fields: Any) -> None:
        self.state[unit].update(fields)

    def line(self, unit: str) -> str:
        st = self.state[unit]
        total = self.total[unit]
        done = total if st["status"] == "done" else min(st["done"], total)
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        where = f" on {node_name(st['node'])}" if st["node"] else ""
        note = f" ({st['note']})" if st.get("note") else ""
        return f"[{bar}] {done:>3}/{total:<3} {st['status']:<8} {unit}{where}{note}"

    def draw(self) -> None:
        if self.tty:
            if self._drawn:
                self.stream.write(f"\x1b[{self._drawn}F")
            lines = [self.line(u) for u in self.order]
            self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:
            for unit in self.order:
                line = self.line(unit)
                if self._last_line.get(unit) != line and self.state[unit]["status"] != "waiting":
                    self.stream.write(f"quantbench sweep: {line}\n")
                    self._last_line[unit] = line
        self.stream.flush()
