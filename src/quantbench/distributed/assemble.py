"""One run file from the units' run files, through the same merge ``quantbench merge`` uses.

Each unit's ``machine_info`` gains a ``ray`` block (node id, name, labels) and every benchmark
names its node in ``extra_info['machine']`` (merge's per-benchmark machine), so the merged file
keeps each node's machine and each cell's node even when two nodes share a host name. Cells the
nodes never reported are added to ``quantbench.failed`` with the reason; ``quantbench.sweep``
records the address, every unit (node, exit code, start and end, attempts) and each node's
``machine_info``. Reports, ``compare`` and the gate then read it like a local run.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from quantbench.distributed.board import node_name
from quantbench.distributed.outcome import UnitOutcome
from quantbench.distributed.plan import Plan
from quantbench.reports.merge import merge_runs


def ray_block(node: dict[str, Any]) -> dict[str, Any]:
    return {"node": node_name(node), "node_id": node.get("node_id"), "ip": node.get("ip"),
            "labels": {k: v for k, v in (node.get("labels") or {}).items() if k != "ray.io/node-id"}}


def _unit_input(outcome: UnitOutcome) -> tuple[str, dict[str, Any]]:
    data = copy.deepcopy(outcome.run)
    machine = data.setdefault("machine_info", {})
    machine["ray"] = ray_block(outcome.node or {})
    for bench in data.get("benchmarks") or []:
        bench.setdefault("extra_info", {})["machine"] = machine
    block = data.setdefault("quantbench", {})
    for name in ("failed", "skipped"):
        block[name] = [{**r, "node": machine["ray"]["node"]} for r in block.get(name) or []]
    return f"{outcome.unit}@{machine['ray']['node']}", data


def _skeleton() -> dict[str, Any]:
    """A run with no benchmark, for a sweep in which no unit returned a run file."""
    from quantbench.results import SCHEMA_VERSION

    return {"machine_info": {}, "commit_info": {}, "benchmarks": [], "datetime": dt.datetime.now(dt.timezone.utc)
            .isoformat(), "version": None, "quantbench": {"schema_version": SCHEMA_VERSION, "failed": [], "skipped": []}}


def assemble(plan: Plan, outcomes: dict[str, UnitOutcome], *, address: str, command: str,
             wall_seconds: float, commit_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sweep's run file: every planned cell once (a benchmark, a failure or a skip), in plan order.

    ``commit_info`` is the driver's: the nodes run a copy of its tree without ``.git``.
    """
    inputs = [_unit_input(outcomes[u.id]) for u in plan.units if u.id in outcomes and outcomes[u.id].run]
    merged, _ = merge_runs(inputs or [("sweep", _skeleton())])
    if commit_info:
        merged["commit_info"] = commit_info
    block = merged["quantbench"]
    for unit in plan.units:
        if unit.id in outcomes:
            block["failed"].extend(outcomes[unit.id].missing)
    not_run = [u.id for u in plan.units if u.id not in outcomes]
    suite = dict(block.get("suite") or {})
    suite["command"] = command
    block.update(suite=suite, wall_seconds=round(wall_seconds, 1))
    nodes: dict[str, Any] = {}
    for name, data in inputs:
        ray = data["machine_info"]["ray"]
        nodes.setdefault(ray["node"], data["machine_info"])
    block["sweep"] = {"address": address, "units": [outcomes[u.id].summary() for u in plan.units if u.id in outcomes],
                      "not_run": not_run, "nodes": nodes, "cells_planned": plan.n_cells}
    return merged
