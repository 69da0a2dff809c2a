"""The sweep's pieces without a cluster: outcomes, the journal and --resume, the merged file, routing."""

from __future__ import annotations

import json

import pytest

from quantbench.distributed import routing
from quantbench.distributed.assemble import assemble
from quantbench.distributed.journal import SweepJournal, finished_units
from quantbench.distributed.outcome import from_result, lost
from quantbench.distributed.plan import Plan, PlannedCell, Unit
from quantbench.errors import QuantbenchError

NODE_A = {"node_id": "a" * 56, "ip": "10.0.0.1", "hostname": "host-a", "labels": {"quantbench/device": "cpu"}}
NODE_B = {"node_id": "b" * 56, "ip": "10.0.0.2", "hostname": "host-b", "labels": {"quantbench/device": "cpu"}}


def _unit(quant: str) -> Unit:
    variant = f"m-d-{quant}-pytorch-cpu"
    cells = [PlannedCell(f"test_latency[{variant}-bs1-seq8]", "test_latency", f"{variant}-bs1-seq8",
                         {"model": "m", "quant": quant, "backend": "pytorch", "device": "cpu", "batch_size": 1,
                          "seq_len": 8}),
             PlannedCell(f"test_accuracy[{variant}]", "test_accuracy", variant,
                         {"model": "m", "quant": quant, "backend": "pytorch", "device": "cpu"})]
    return Unit(variant, "cpu", tuple(cells))


def _bench(cell: PlannedCell) -> dict:
    return {"name": cell.key, "fullname": f"bench/x.py::{cell.key}", "param": cell.cell_id, "params": cell.params,
            "group": "latency", "stats": {"data": [0.01, 0.011], "rounds": 2}, "extra_info": {}}


def _run(node: dict, benches: list, failed=()) -> dict:
    return {"machine_info": {"node": node["hostname"], "quantbench": {"cpu_model": "cpu"}}, "commit_info": {},
            "datetime": "2026-01-01T00:00:00", "version": "5.3", "benchmarks": benches,
            "quantbench": {"schema_version": 1, "suite": {"name": "t"}, "failed": list(failed), "skipped": []}}


def _result(unit: Unit, node: dict, *, exit_code=0, run=None, journal=(), log="") -> dict:
    return {"unit": unit.id, "node": node, "exit_code": exit_code, "started": 1.0, "ended": 2.0, "run": run,
            "journal": list(journal), "machine_info": None, "log_tail": log, "threads": {"OMP_NUM_THREADS": "2"}}


def test_cells_a_node_never_reported_fail_with_the_node_and_exit_code():
    unit = _unit("fp32")
    outcome = from_result(unit, _result(unit, NODE_A, exit_code=-9, run=_run(NODE_A, [_bench(unit.cells[0])]),
                                        log="...\nKilled"), None)
    assert outcome.status == "done" and not outcome.complete
    assert [m["cell_id"] for m in outcome.missing] == ["m-d-fp32-pytorch-cpu"]
    assert outcome.missing[0]["reason"] == "not reported by node host-a/aaaaaaaa (pytest exit -9: Killed)"


def test_without_a_run_file_the_units_journal_is_kept():
    unit = _unit("fp32")
    journal = [{"test": "test_latency", "cell_id": unit.cells[0].cell_id, "params": unit.cells[0].params,
                "outcome": "passed", "benchmark": _bench(unit.cells[0])},
               {"test": "test_accuracy", "cell_id": unit.cells[1].cell_id, "params": unit.cells[1].params,
                "outcome": "skipped", "reason": "no MPS", "benchmark": None}]
    outcome = from_result(unit, _result(unit, NODE_A, journal=journal), None)
    assert outcome.complete and [b["name"] for b in outcome.run["benchmarks"]] == [unit.cells[0].key]
    assert outcome.run["quantbench"]["skipped"][0]["reason"] == "no MPS"


def test_journal_resume_keeps_complete_units_only(tmp_path):
    path = tmp_path / "out.jsonl"
    a, b, c = _unit("fp32"), _unit("nf4"), _unit("bf16")
    journal = SweepJournal(path, resume=False)
    journal.write(from_result(a, _result(a, NODE_A, run=_run(NODE_A, [_bench(x) for x in a.cells])), None))
    failed = {"test": "test_accuracy", "cell_id": b.cells[1].cell_id, "params": b.cells[1].params,
              "outcome": "failed", "reason": "MemoryError"}
    journal.write(from_result(b, _result(b, NODE_B, exit_code=1, run=_run(NODE_B, [_bench(b.cells[0])], [failed])),
                              None))
    journal.write(lost(c, RuntimeError("boom"), {"node": NODE_B, "attempts": 2, "nodes": [NODE_A, NODE_B]},
                       why="node died, retries exhausted"))
    journal.close()
    # A torn write: cell lines of a unit whose unit line never came.
    with open(path, "a") as handle:
        handle.write(json.dumps({"test": "test_latency", "cell_id": "x", "outcome": "passed", "unit": a.id,
                                 "write": "torn", "benchmark": _bench(a.cells[0])}) + "\n")
    done = finished_units(path)
    assert set(done) == {a.id}  # a failed cell or a lost unit runs again
    assert [x["name"] for x in done[a.id].run["benchmarks"]] == a.keys and done[a.id].node == NODE_A
    # The plugin's own --resume reader skips the unit lines instead of failing on them.
    from quantbench.plugin.journal import finished

    assert set(finished(path)) == {*a.keys, b.cells[0].key, "test_latency[x]"}


def test_assembled_file_holds_every_planned_cell_once_and_each_nodes_machine():
    a, b, c = _unit("fp32"), _unit("nf4"), _unit("bf16")
    plan = Plan((a, b, c), None, "t")
    outcomes = {a.id: from_result(a, _result(a, NODE_A, run=_run(NODE_A, [_bench(x) for x in a.cells])), None),
                b.id: from_result(b, _result(b, NODE_B, run=_run(NODE_B, [_bench(x) for x in b.cells])), None),
                c.id: lost(c, RuntimeError("node gone"), {"node": NODE_B, "attempts": 1}, why="node died")}
    data = assemble(plan, outcomes, address="auto", command="quantbench sweep --ray auto", wall_seconds=3.0,
                    commit_info={"id": "abc", "dirty": False})
    assert data["commit_info"] == {"id": "abc", "dirty": False}  # the driver's tree, not the nodes' copies
    names = [x["name"] for x in data["benchmarks"]] + [f"{f['test']}[{f['cell_id']}]" for f in data["quantbench"]["failed"]]
    assert sorted(names) == sorted(k for u in (a, b, c) for k in u.keys)
    assert set(data["quantbench"]["sweep"]["nodes"]) == {"host-a/aaaaaaaa", "host-b/bbbbbbbb"}
    by_name = {x["name"]: x["extra_info"]["machine"]["ray"]["node"] for x in data["benchmarks"]}
    assert by_name[a.keys[0]] == "host-a/aaaaaaaa" and by_name[b.keys[0]] == "host-b/bbbbbbbb"
    assert all(f["reason"] == "node died; last on node host-b/bbbbbbbb after 1 attempt(s) (node gone)"
               and f["node"] == "host-b/bbbbbbbb" for f in data["quantbench"]["failed"])
    assert data["quantbench"]["suite"]["command"] == "quantbench sweep --ray auto"
    from quantbench.results import parse_run

    assert len(parse_run(data).records) == 4  # what report, compare and gate read


def test_routing_needs_a_slot_and_matching_labels():
    def node(node_id, labels, slot=1, gpus=0):
        return {"NodeID": node_id, "Alive": True, "NodeManagerAddress": "10.0.0.1", "Labels": labels,
                "Resources": {"CPU": 4, routing.SLOT: slot, **({"GPU": gpus} if gpus else {})}}

    nodes = routing.alive_nodes([node("h" * 56, {}, slot=0), node("c" * 56, {"quantbench/device": "cpu"}),
                                 node("g" * 56, {"quantbench/device": "cuda", "gpu": "h100"}, gpus=8),
                                 node("s" * 56, {"quantbench/device": "cuda", "gpu": "h100"}, gpus=4)])
    cuda = routing.selector("cuda", {"gpu": "h100"})
    assert routing.gpus_for("cuda", cuda, nodes) == 4 and routing.gpus_for("cpu", {}, nodes) == 0
    routing.check_routable({"u": (routing.selector("cpu", {}), 0), "v": (cuda, 4)}, nodes)
    with pytest.raises(QuantbenchError, match="no alive node with a quantbench_slot has labels "
                                              "quantbench/device=cpu,gpu=h100 \\(needed by u\\)"):
        routing.check_routable({"u": (routing.selector("cpu", {"gpu": "h100"}), 0)}, nodes)
    with pytest.raises(QuantbenchError, match="no node in the cluster offers a quantbench_slot"):
        routing.check_routable({"u": ({}, 0)}, nodes[:1])
    with pytest.raises(QuantbenchError, match="has a GPU"):
        routing.gpus_for("cuda", routing.selector("cuda", {"gpu": "a100"}), nodes)


def test_a_unit_no_alive_node_can_take_is_cancelled_after_the_wait():
    from quantbench.distributed.driver import _cancel_unroutable, _Submitted

    class FakeRay:
        def __init__(self):
            self.cancelled = []

        def cancel(self, ref, force=False):
            self.cancelled.append((ref, force))

    ray = FakeRay()
    sub = _Submitted(_unit("fp32"), routing.selector("cpu", {"zone": "a"}), 0)
    pending = {"ref": sub}
    zone_b = routing.alive_nodes([{"NodeID": "b" * 56, "Alive": True, "Labels": {"quantbench/device": "cpu",
                                                                                "zone": "b"},
                                   "Resources": {routing.SLOT: 1}}])
    _cancel_unroutable(ray, pending, zone_b, wait_s=60, now=100.0)
    _cancel_unroutable(ray, pending, zone_b, wait_s=60, now=159.0)
    assert ray.cancelled == [] and sub.unroutable_since == 100.0
    _cancel_unroutable(ray, pending, zone_b, wait_s=60, now=160.0)
    assert ray.cancelled == [("ref", True)]
    # A matching node coming back resets the clock.
    sub.unroutable_since, ray.cancelled = 100.0, []
    zone_a = routing.alive_nodes([{"NodeID": "a" * 56, "Alive": True, "Labels": {"quantbench/device": "cpu",
                                                                                "zone": "a"},
                                   "Resources": {routing.SLOT: 1}}])
    _cancel_unroutable(ray, pending, zone_a, wait_s=60, now=500.0)
    assert ray.cancelled == [] and sub.unroutable_since is None
