"""A Ray cluster on this machine: a head with no CPU (it does no timing) and two timing nodes.

As Ray's own tests do: ``ray.cluster_utils.Cluster`` with fast health checks, so a removed node
is declared dead within about two seconds. Each timing node has one CPU and one
``quantbench_slot`` and carries ``quantbench/device=cpu`` plus a ``zone`` label.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.tiny import tiny_suite, write_suite

HEALTH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000, "health_check_failure_threshold": 2}


def add_timing_node(cluster, device: str = "cpu", **labels):
    """A node with one CPU and one slot; its labels are kept in ``cluster.qb_labels[node_id]``."""
    labels = {"quantbench/device": device, **labels}
    node = cluster.add_node(num_cpus=1, resources={"quantbench_slot": 1}, labels=labels)
    cluster.qb_labels = {**getattr(cluster, "qb_labels", {}), node.node_id: labels}
    return node


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    pytest.importorskip("ray", reason="the distributed tests need the [ray] extra")
    from ray.cluster_utils import Cluster

    # The nodes' workers inherit this process's environment: their artifacts go to a cache of their own.
    saved = os.environ.get("QUANTBENCH_CACHE_DIR")
    os.environ["QUANTBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("node-cache"))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": HEALTH})
    add_timing_node(c, zone="a")
    add_timing_node(c, zone="b")
    c.wait_for_nodes()
    yield c
    c.shutdown()
    if saved is None:
        os.environ.pop("QUANTBENCH_CACHE_DIR", None)
    else:
        os.environ["QUANTBENCH_CACHE_DIR"] = saved


@pytest.fixture
def project(tmp_path, tiny_model, tiny_data, monkeypatch):
    """A project folder (bench/ and a tiny suite of two variants) the driver runs in and ships."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "bench", root / "bench")
    write_suite(root / "suite.yaml", tiny_suite(
        tiny_model, tiny_data, quantization=["fp32", "dynamic_int8", "bf16"], batch_sizes=[1],
        measure={"warmup_rounds": 1, "min_rounds": 3, "max_rounds": 3, "min_time_s": 0.0, "max_time_s": 0.5,
                 "eval_batch_size": 16, "efficiency": False, "memory": "inprocess"}))
    monkeypatch.setenv("QUANTBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return root


def sweep_command(cluster, *args: str, suite_option: bool = True) -> list[str]:
    suite = ["--suite", "suite.yaml"] if suite_option else []
    return [sys.executable, "-m", "quantbench.cli", "sweep", "--ray", cluster.address, *suite,
            "--benchmark-json", "out.json", *args]


def run_sweep(cluster, project: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(sweep_command(cluster, *args), cwd=project, capture_output=True, text=True,
                          timeout=timeout, env=_env(), check=False)
    out = project / "out.json"
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def start_sweep(cluster, project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The driver in the background; with ``QUANTBENCH_SUITE`` in ``env``, no --suite option (the
    nodes must get the variable from the driver)."""
    command = sweep_command(cluster, *args, suite_option="QUANTBENCH_SUITE" not in (env or {}))
    return subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(env), preexec_fn=_ctrl_c_as_at_a_terminal)


def _ctrl_c_as_at_a_terminal() -> None:
    """The driver takes Ctrl-C as a user's terminal delivers it. A test run started in the background
    of a non-interactive shell (`cmd &`) inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt: the Ctrl-C test would see the sweep run to the end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env.pop("RAY_ADDRESS", None)
    return env


_COLLECTED: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}


def local_cells(project: Path, *args: str) -> set[str]:
    """The cells a plain local `pytest bench/` collects for the same suite: what the sweep must hold.

    Kept per suite text and options: a collection costs a Python start with torch and transformers
    (about 8 s here), and several tests ask for the same suite's cells."""
    key = ((project / "suite.yaml").read_text(), args)
    if key not in _COLLECTED:
        proc = subprocess.run([sys.executable, "-m", "pytest", "bench", "--suite", "suite.yaml", "--collect-only",
                               "-q", "-p", "no:cacheprovider", *args], cwd=project, capture_output=True, text=True,
                              timeout=120, check=True)
        _COLLECTED[key] = frozenset(line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line)
    return set(_COLLECTED[key])


def sweep_cells(data: dict) -> list[str]:
    """Every cell the run file accounts for: benchmarks, failed and skipped (a cell in two places counts twice)."""
    block = data["quantbench"]
    return ([b["name"] for b in data["benchmarks"]]
            + [f"{r['test']}[{r['cell_id']}]" for r in block["failed"] + block["skipped"]])


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 180) -> tuple[str, list[str]]:
    """Read the driver's progress lines until one contains ``needle``; returns it and what came before."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return line, seen
    raise AssertionError(f"no line with {needle!r} from the driver; it said:\n" + "".join(seen[-40:]))
