"""`quantbench sweep` on a two-node Ray cluster on this machine, end to end.

Every test here runs real sweeps: the driver in a subprocess, each unit's pytest in a subprocess
on its node, on a tiny random model. A unit costs a Python start with torch (10 to 30 s on two
busy cores), so these are marked slow; CI runs them with the rest.
"""

from __future__ import annotations

import itertools
import json
import os
import signal

import pytest
import yaml

from tests.distributed.conftest import (
    add_timing_node,
    local_cells,
    run_sweep,
    start_sweep,
    sweep_cells,
    wait_for_line,
)

pytestmark = pytest.mark.slow
TWO_UNITS = ("--", "--quant", "fp32,dynamic_int8")


def _units(data):
    return {u["unit"]: u for u in data["quantbench"]["sweep"]["units"]}


def _node_ids(cluster):
    return {n.node_id for n in cluster.worker_nodes}


def test_sweep_merges_every_cell_once_with_each_nodes_machine_and_no_overlap(cluster, project):
    proc, data = run_sweep(cluster, project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = sweep_cells(data)
    assert len(cells) == len(set(cells))  # each cell once
    assert set(cells) == local_cells(project)  # and exactly the cells `pytest bench/` collects
    units = _units(data)
    assert set(units) == {f"tiny-toy-{q}-pytorch-cpu" for q in ("fp32", "dynamic_int8", "bf16")}
    # Three units on two one-slot nodes: both nodes used, never two units at once on one node.
    by_node = {}
    for unit in units.values():
        by_node.setdefault(unit["node_id"], []).append((unit["started"], unit["ended"]))
    assert len(by_node) == 2 and set(by_node) <= _node_ids(cluster)
    for spans in by_node.values():
        spans.sort()
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    assert max(len(spans) for spans in by_node.values()) == 2  # one node really ran two units in turn
    # machine_info per node, with its Ray identity and labels; each cell names its node.
    nodes = data["quantbench"]["sweep"]["nodes"]
    assert {info["ray"]["node_id"] for info in nodes.values()} == set(by_node)
    for info in nodes.values():
        assert info["quantbench"]["cpu_cores_logical"] >= 1 and info["ray"]["labels"]["quantbench/device"] == "cpu"
    for bench in data["benchmarks"]:
        unit = units["tiny-toy-{quant}-{backend}-{device}".format(**bench["params"])]
        assert bench["extra_info"]["machine"]["ray"]["node_id"] == unit["node_id"]
    # Thread variables from the node's cores (the suite pins none), not Ray's OMP_NUM_THREADS=1.
    cores = str(len(os.sched_getaffinity(0)))
    assert all(u["threads"]["OMP_NUM_THREADS"] == cores for u in units.values())
    # The journal: a line per cell and one per unit.
    journal = [json.loads(line) for line in (project / "out.jsonl").read_text().splitlines()]
    assert sum(r.get("kind") == "unit" for r in journal) == 3 and len(journal) == 3 + len(cells)
    # Reports and the gate read it like a local run.
    from quantbench.cli import main

    assert main(["report", str(project / "out.json"), "-o", str(project / "report"), "--no-model-cards"]) == 0
    html = (project / "report" / "index.html").read_text()
    assert all(info["ray"]["node"] in html for info in nodes.values())
    assert main(["gate", str(project / "out.json"), str(project / "out.json")]) == 0
    # compare on the one file puts the nodes side by side.
    assert main(["compare", str(project / "out.json"), "-o", str(project / "compare")]) == 0
    compared = json.loads((project / "compare" / "compare.json").read_text())
    assert sorted(r["machine_info"]["ray"]["node_id"] for r in compared["runs"]) == sorted(by_node)


def test_labels_route_each_device_to_its_nodes_and_node_label_narrows(cluster, project):
    suite = yaml.safe_load((project / "suite.yaml").read_text())
    suite.update(quantization=["fp32"], devices=["cpu", "mps"])
    (project / "suite.yaml").write_text(yaml.safe_dump(suite))
    mps = add_timing_node(cluster, device="mps", zone="b")
    try:
        zone_b = {n.node_id for n in cluster.worker_nodes if n is not mps and _labels(cluster, n)["zone"] == "b"}
        proc, data = run_sweep(cluster, project, "--node-label", "zone=b")
        assert proc.returncode == 0, proc.stderr[-3000:]
        units = _units(data)
        # The CPU unit ran on the CPU node of zone b, the MPS unit on the MPS node.
        assert units["tiny-toy-fp32-pytorch-cpu"]["node_id"] in zone_b
        assert units["tiny-toy-fp32-pytorch-mps"]["node_id"] == mps.node_id
        # No MPS here: the node skipped its cells with the reason, and they say which node.
        skipped = [s for s in data["quantbench"]["skipped"] if s["params"]["device"] == "mps"]
        assert skipped and all(s["node"].endswith(mps.node_id[:8]) for s in skipped)
        # A label no node has: one line naming it, exit 2, nothing submitted.
        proc, _ = run_sweep(cluster, project, "--node-label", "zone=c", "--benchmark-json", "none.json")
        assert proc.returncode == 2
        assert "no alive node with a quantbench_slot has labels quantbench/device=cpu,zone=c" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    finally:
        cluster.remove_node(mps)


def _labels(cluster, node):
    return cluster.qb_labels[node.node_id]


def _kill_node_of(cluster, proc, unit):
    """Wait until ``unit`` runs, then kill its node without warning; returns the node's zone label."""
    line, _ = wait_for_line(proc, f"running  {unit} on ")
    short = line.split(" on ", 1)[1].split("/", 1)[1][:8]
    node = next(n for n in cluster.worker_nodes if n.node_id.startswith(short))
    cluster.remove_node(node, allow_graceful=False)
    return short, _labels(cluster, node)["zone"]


@pytest.mark.parametrize("retries", [1, 0])
def test_a_node_dying_mid_unit_is_retried_elsewhere_or_recorded_failed(cluster, project, retries):
    proc = start_sweep(cluster, project, "--max-retries", str(retries), *TWO_UNITS)
    zone = None
    try:
        dead, zone = _kill_node_of(cluster, proc, "tiny-toy-fp32-pytorch-cpu")
        output = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
        if zone:
            add_timing_node(cluster, zone=zone)  # the next test gets two timing nodes again
    data = json.loads((project / "out.json").read_text())
    units = _units(data)
    assert len(sweep_cells(data)) == len(set(sweep_cells(data))) == len(local_cells(project, *TWO_UNITS[1:]))
    # The other unit's cells are all there, measured.
    assert {b["name"] for b in data["benchmarks"] if b["params"]["quant"] == "dynamic_int8"} == \
        {"test_latency[tiny-toy-dynamic_int8-pytorch-cpu-bs1-seq16]", "test_accuracy[tiny-toy-dynamic_int8-pytorch-cpu]"}
    fp32 = units["tiny-toy-fp32-pytorch-cpu"]
    if retries:
        assert proc.returncode == 0, output[-3000:]
        assert fp32["status"] == "done" and fp32["attempts"] == 2
        assert fp32["nodes_tried"][0].endswith(dead) and not fp32["node_id"].startswith(dead)
        assert {b["params"]["quant"] for b in data["benchmarks"]} == {"fp32", "dynamic_int8"}
    else:
        assert proc.returncode == 1, output[-3000:]
        assert fp32["status"] == "lost"
        failed = [f for f in data["quantbench"]["failed"] if f["params"]["quant"] == "fp32"]
        assert {f["cell_id"] for f in failed} == {"tiny-toy-fp32-pytorch-cpu-bs1-seq16", "tiny-toy-fp32-pytorch-cpu"}
        assert all(f["reason"].startswith("node died, retries exhausted (--max-retries 0); last on node ")
                   and dead in f["reason"] for f in failed), failed
        assert not [b for b in data["benchmarks"] if b["params"]["quant"] == "fp32"]


def test_ctrl_c_keeps_finished_units_and_resume_runs_only_the_rest(cluster, project):
    # The suite comes from the driver's QUANTBENCH_SUITE: the nodes must be given it too.
    proc = start_sweep(cluster, project, env={"QUANTBENCH_SUITE": "suite.yaml"})
    try:
        wait_for_line(proc, "done     tiny-toy-")
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=120)[0]
    finally:
        proc.kill()
    assert proc.returncode == 130, output[-3000:]
    assert "--resume" in output
    assert _units_pytest_gone(), "a cancelled unit's pytest is still running"
    first = json.loads((project / "out.json").read_text())
    finished = {u["unit"]: u for u in first["quantbench"]["sweep"]["units"] if u["status"] == "done"}
    assert 1 <= len(finished) < 3 and first["quantbench"]["sweep"]["not_run"]

    proc, data = run_sweep(cluster, project, "--resume")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(finished)} units already done (--resume)" in proc.stderr
    units = _units(data)
    for unit, before in finished.items():  # not run again: the same node and the same times
        assert (units[unit]["node_id"], units[unit]["started"]) == (before["node_id"], before["started"])
    assert all(units[u]["started"] > max(f["ended"] for f in finished.values()) for u in units if u not in finished)
    cells = sweep_cells(data)
    assert len(cells) == len(set(cells)) and set(cells) == local_cells(project)


def _units_pytest_gone(timeout: float = 15) -> bool:
    """No pytest of a tiny-toy unit (``--cells-from .../quantbench-tiny-toy-...``) left on the machine."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for p in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if "--cells-from" in cmdline and "quantbench-tiny-toy-" in cmdline:
                alive.append(p)
        if not alive:
            return True
        time.sleep(0.5)
    return False


def test_each_host_measures_the_limits_once_before_any_unit_and_units_read_them(cluster, project):
    # Nodes of one host take turns before the first unit: the first measures the families the units
    # run, with nothing else running; a node that shares its cache then finds them there, and so
    # does the unit.
    suite = yaml.safe_load((project / "suite.yaml").read_text())
    suite["measure"]["efficiency"] = True
    (project / "suite.yaml").write_text(yaml.safe_dump(suite))
    proc, data = run_sweep(cluster, project, "--", "--quant", "fp32")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if "machine limits on host" in line]
    slots = [n for n in cluster.worker_nodes if n.node_id in getattr(cluster, "qb_labels", {})]
    assert len(lines) >= 2 and any("measured matmul_fp32" in line for line in lines), proc.stderr[-3000:]
    assert len(_units(data)) == 1 and len(lines) <= len(slots)
    [node] = data["quantbench"]["sweep"]["nodes"].values()
    limits = node["quantbench"]["limits"]["cpu"]
    assert limits["cached"] is True and limits["limits"]["matmul_fp32"]["peak"] > 0, {
        k: v for k, v in limits.items() if k != "limits"}
    # A second sweep measures nothing: every node reads its cache.
    again, _ = run_sweep(cluster, project, "--", "--quant", "fp32")
    repeat = [line for line in again.stderr.splitlines() if "machine limits on host" in line]
    assert again.returncode == 0 and repeat and all(line.endswith(": cached") for line in repeat), again.stderr[-2000:]
