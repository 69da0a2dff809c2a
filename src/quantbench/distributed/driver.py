"""The sweep's driver: connect, check routing, submit one task per unit, collect with ``ray.wait``.

* Results are collected one at a time as they arrive (``ray.wait``), each journaled before the
  next is awaited, so a driver killed at any point leaves a journal ``--resume`` continues.
* Retries are Ray's: a unit asks for ``max_retries``, so when its node dies Ray runs it again on
  another node its label selector allows. A unit whose pytest exits 1 returned normally: that is
  a result, never retried. When retries run out, its cells are recorded failed with the node.
* A unit that waits longer than ``node_wait_s`` with no alive node able to take it (every node of
  its labels died) is cancelled and recorded failed, instead of waiting forever.
* Ctrl-C stops the running units (each node task kills its pytest), writes the run file of what
  finished, and exits 130; the journal already holds every finished unit.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantbench.distributed import node_task, routing
from quantbench.distributed.assemble import assemble
from quantbench.distributed.board import Progress, node_name, start_board
from quantbench.distributed.journal import SweepJournal, finished_units
from quantbench.distributed.outcome import UnitOutcome, from_result, lost
from quantbench.distributed.plan import Plan, Unit, plan_sweep
from quantbench.errors import MissingDependencyError, QuantbenchError

#: Shipped to the nodes with the working tree? No: environments, caches, outputs and VCS data.
EXCLUDES = [".git", ".venv*", "**/__pycache__", "*.egg-info", ".pytest_cache", ".benchmarks", ".quantbench",
            "reports/*", "results*.json", "results*.jsonl", "llm*.json", "llm*.jsonl", "build", "dist"]
#: Options the driver owns; the nodes get their own values.
DRIVER_OPTIONS = ("--benchmark-json", "--results-jsonl", "--report-dir", "--resume", "--shard", "--cells-from",
                  "--gate-baseline", "--gate-policy", "--suite")


@dataclass
class SweepOptions:
    address: str
    suite: str | None = None
    benchmark_json: Path = Path("results.json")
    results_jsonl: Path | None = None
    report_dir: Path | None = None
    max_retries: int = 1
    resume: bool = False
    node_labels: dict[str, str] = field(default_factory=dict)
    pytest_args: list[str] = field(default_factory=list)
    node_wait_s: float = 120.0
    command: str = "quantbench sweep"
    stream: Any = None  # progress goes here (default stderr)

    @property
    def journal_path(self) -> Path:
        return self.results_jsonl or self.benchmark_json.with_suffix(".jsonl")


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("--ray needs Ray: pip install 'quantbench[ray]'") from None
    return ray


def check_pytest_args(args: list[str]) -> list[str]:
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in DRIVER_OPTIONS:
            raise QuantbenchError(f"{name} after --: give it to quantbench sweep itself (before --), "
                                  "the nodes get their own")
    return args


def node_pytest_args(opts: SweepOptions, root: Path) -> list[str]:
    """The pytest options every node (and the planner) gets: the suite, then the user's."""
    args = []
    if opts.suite:
        suite = Path(opts.suite)
        if suite.suffix in (".yaml", ".yml") and suite.exists():
            resolved = suite.resolve()
            # Inside the tree it ships with the working dir: name it relative, so it resolves on the node.
            suite_arg = str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(resolved)
        else:
            suite_arg = opts.suite
        args += ["--suite", suite_arg]
    return args + check_pytest_args(list(opts.pytest_args))


def probe(address: str, timeout_s: float = 5.0) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that does not accept a connection is one line, at once.

    ray.init would otherwise keep retrying an address that never answers. ``auto`` is Ray's own
    look-up of a local cluster, which fails fast by itself.
    """
    import socket

    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise QuantbenchError(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise QuantbenchError(f"--ray {address}: no Ray cluster answers there "
                              f"({exc.strerror or type(exc).__name__})") from None


def forwarded_env() -> dict[str, str]:
    """The driver's QUANTBENCH_* variables that shape the cells and their measurement (the suite, the
    filters, threads, price): the nodes get them too, so they collect what the driver planned."""
    from quantbench.plugin.options import LIST_OPTIONS

    names = {f"QUANTBENCH_{n.upper()}" for n in (*LIST_OPTIONS, "suite", "threads", "price_per_hour")}
    return {name: value for name, value in os.environ.items() if name in names and value}


def connect(ray, address: str, root: Path) -> None:
    from ray import cloudpickle

    probe(address)

    # The node task travels by value: nodes run the driver's version of it.
    cloudpickle.register_pickle_by_value(node_task)
    # Inside `ray job submit --working-dir`, the job has shipped the tree already, and a runtime_env
    # given here as well made Ray drop the job's copy, the driver's own working directory.
    runtime_env = None if _job_working_dir() else {"working_dir": str(root), "excludes": EXCLUDES}
    try:
        ray.init(address=address, runtime_env=runtime_env,
                 log_to_driver=False, logging_level="ERROR", configure_logging=False)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, ValueError, RuntimeError... all one answer
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise QuantbenchError(f"--ray {address}: no Ray cluster answers there ({first[:300]})") from None


def _job_working_dir() -> str | None:
    """The working_dir of the Ray job this driver runs in, if any: Ray refuses to merge a second one."""
    raw = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not raw:
        return None
    from ray.job_config import JobConfig

    return (JobConfig.from_json(json.loads(raw)).runtime_env or {}).get("working_dir")


@dataclass
class _Submitted:
    unit: Unit
    wanted: dict[str, str]
    gpus: float
    unroutable_since: float | None = None
    submitted: float = 0.0


def run_sweep(opts: SweepOptions) -> int:
    ray = import_ray()
    root = Path.cwd().resolve()
    if not (root / "bench").is_dir():
        raise QuantbenchError(f"no bench/ in {root}: run quantbench sweep from the project's root")
    if opts.max_retries < 0:
        raise QuantbenchError(f"--max-retries {opts.max_retries}: must be 0 or more")
    check_job_outputs(opts)
    args = node_pytest_args(opts, root)
    previous: dict[str, UnitOutcome] = {}
    if opts.resume:
        previous = finished_units(opts.journal_path)  # raises with the path when there is none
    started = time.monotonic()
    with _driver_tree(root):
        connect(ray, opts.address, root)
        try:
            plan = plan_sweep(args)
            return _sweep(ray, opts, plan, args, previous, started)
        finally:
            ray.shutdown()


@contextmanager
def _driver_tree(root: Path):
    """Where the driver plans from. Inside a ``ray job submit --working-dir`` job, its cwd is Ray's
    unpacked copy of the tree, which Ray deleted when this driver connected (Ray 2.60, nodes on one
    host) and unpacked again later: planning there failed in ``os.getcwd()``. So a job's driver
    plans from a private copy; the nodes still get the job's package."""
    if not _job_working_dir():
        yield root
        return
    with tempfile.TemporaryDirectory(prefix="quantbench-driver-") as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(root, copy, symlinks=True)
        os.chdir(copy)
        try:
            yield copy
        finally:
            os.chdir(Path(tmp).parent)  # not into the copy being deleted, nor the job's vanished tree


def check_job_outputs(opts: SweepOptions) -> None:
    """A job's working dir is Ray's temporary copy: outputs written there would be lost."""
    if not _job_working_dir():
        return
    for flag, path in (("--benchmark-json", opts.benchmark_json), ("--results-jsonl", opts.results_jsonl),
                       ("--report-dir", opts.report_dir)):
        if path is not None and not Path(path).is_absolute():
            raise QuantbenchError(f"{flag} {path}: under ray job submit, give an absolute path on the head "
                                  "(the job's working dir is Ray's temporary copy of the tree)")


def _sweep(ray, opts: SweepOptions, plan: Plan, args: list[str], previous: dict[str, UnitOutcome],
           started: float) -> int:
    stream = opts.stream or sys.stderr
    nodes = routing.alive_nodes(ray.nodes())
    todo = [u for u in plan.units if u.id not in previous]
    submitted = {}
    for unit in todo:
        wanted = routing.selector(unit.device, opts.node_labels)
        submitted[unit.id] = _Submitted(unit, wanted, routing.gpus_for(unit.device, wanted, nodes))
    routing.check_routable({s.unit.id: (s.wanted, s.gpus) for s in submitted.values()}, nodes)
    outcomes: dict[str, UnitOutcome] = {u: o for u, o in previous.items() if u in {x.id for x in plan.units}}
    progress = Progress([(u.id, len(u.cells)) for u in plan.units], stream)
    for unit_id, outcome in outcomes.items():
        progress.update(unit_id, status="done", node=outcome.node, note="from the journal")
    stream.write(f"quantbench sweep: {len(plan.units)} units, {plan.n_cells} cells"
                 + (f", {len(outcomes)} units already done (--resume)" if outcomes else "")
                 + f"; {sum(1 for n in nodes if n.resources.get(routing.SLOT, 0) >= 1)} timing nodes\n")
    if todo and plan.kernels:
        measure_limits_per_host(ray, opts, plan, {s.unit.device for s in submitted.values()}, nodes, stream)
    journal = SweepJournal(opts.journal_path, resume=opts.resume)
    board = start_board(ray)
    remote = ray.remote(node_task.run_unit)
    pending: dict[Any, _Submitted] = {}
    for sub in submitted.values():
        sub.submitted = time.time()
        ref = remote.options(num_cpus=1, num_gpus=sub.gpus, resources={routing.SLOT: 1},
                             label_selector=sub.wanted, max_retries=opts.max_retries, retry_exceptions=False,
                             name=f"quantbench:{sub.unit.id}").remote(sub.unit.id, sub.unit.keys, args, plan.threads,
                                                                      board, forwarded_env())
        pending[ref] = sub
    interrupted = False
    try:
        _collect(ray, opts, pending, board, journal, outcomes, progress)
    except KeyboardInterrupt:
        interrupted = True
        _cancel(ray, board, list(pending))
    finally:
        journal.close()
    progress.draw()
    data = assemble(plan, outcomes, address=opts.address, command=opts.command,
                    wall_seconds=time.monotonic() - started, commit_info=_commit_info())
    _write(opts, data, stream)
    failed = len(data["quantbench"]["failed"])
    ran = sum(1 for o in outcomes.values() if o.status == "done")
    stream.write(f"quantbench sweep: {len(data['benchmarks'])} benchmarks, {failed} failed cells, "
                 f"{len(data['quantbench']['skipped'])} skipped, from {ran}/{len(plan.units)} units on "
                 f"{len(data['quantbench']['sweep']['nodes'])} nodes in {time.monotonic() - started:.1f} s\n")
    if interrupted:
        stream.write(f"quantbench sweep: interrupted; {len(plan.units) - len(outcomes)} units not finished. "
                     f"Run the same command with --resume to continue from {opts.journal_path}\n")
        return 130
    return 1 if failed else 0


def measure_limits_per_host(ray, opts: SweepOptions, plan: Plan, devices: set[str], nodes, stream,
                            timeout_s: float = 600.0) -> list[dict[str, Any]]:
    """Before any unit: every timing node reads the machine limits its units need, or measures them
    when its cache lacks them, holding its slot while nothing else runs on its host. Within a host
    the nodes go one after the other (the first measures, the others find the host's cache); hosts
    go in parallel. A node that fails is reported, and its units measure for themselves."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(node_task.measure_limits)
    queues = []  # one queue of (node, device) per host
    for device in sorted(devices):
        if plan.kernels.get(device):
            for host in routing.nodes_by_host(device, routing.selector(device, opts.node_labels), nodes):
                queues.append([(node, device) for node in host])
    results = []
    while any(queues):
        refs = {}
        for queue in queues:
            if queue:
                node, device = queue.pop(0)
                ref = remote.options(num_cpus=1, resources={routing.SLOT: 1}, num_gpus=1 if device == "cuda" else 0,
                                     scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False),
                                     name=f"quantbench:limits:{node.short}").remote(
                    device, list(plan.kernels[device]), plan.threads, forwarded_env(), timeout_s)
                refs[ref] = (node, device)
        try:
            done = ray.get(list(refs), timeout=timeout_s + 60)
        except Exception as exc:  # noqa: BLE001 - the units still measure for themselves
            stream.write(f"quantbench sweep: machine limits not measured before the units ({type(exc).__name__}: "
                         f"{exc}); each unit measures its own\n")
            return results
        for (node, device), result in zip(refs.values(), done):
            results.append(result)
            if result.get("exit_code") != 0:
                last = ((result.get("error") or "").strip().splitlines() or ["no output"])[-1]
                stream.write(f"quantbench sweep: machine limits on {node.short} ({device}) failed, its units "
                             f"measure their own: {last}\n")
                continue
            what = ("cached" if result.get("cached") else
                    f"measured {', '.join(result.get('measured_now') or [])} in {result.get('limits_seconds')} s")
            stream.write(f"quantbench sweep: machine limits on host {node.ip}, node {node.short} ({device}): {what}\n")
    return results


def _board_snapshot(ray, board) -> dict[str, Any]:
    try:
        return ray.get(board.snapshot.remote(), timeout=5)
    except Exception:  # noqa: BLE001 - progress only: a lost board costs the bars, never a result
        return {}


def _collect(ray, opts: SweepOptions, pending: dict, board, journal: SweepJournal,
             outcomes: dict[str, UnitOutcome], progress: Progress) -> None:
    from ray import exceptions as rx

    last_route_check = 0.0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        snapshot = _board_snapshot(ray, board)
        for ref in ready:
            sub = pending.pop(ref)
            entry = snapshot.get(sub.unit.id)
            try:
                outcome = from_result(sub.unit, ray.get(ref), entry)
            except rx.RayTaskError as exc:  # the node task itself raised: a bug or a broken node, not a retry
                outcome = lost(sub.unit, exc, entry, why="the node task failed")
            except (rx.WorkerCrashedError, rx.NodeDiedError, rx.LocalRayletDiedError, rx.ObjectLostError) as exc:
                outcome = lost(sub.unit, exc, entry, why=f"node died, retries exhausted (--max-retries "
                                                         f"{opts.max_retries})")
            except rx.TaskCancelledError as exc:
                outcome = lost(sub.unit, exc, entry, why=sub_reason(sub) or "cancelled")
            except rx.RayError as exc:
                outcome = lost(sub.unit, exc, entry, why="Ray lost the unit")
            outcome.submitted, outcome.received = sub.submitted, time.time()
            outcomes[sub.unit.id] = outcome
            journal.write(outcome)
            progress.update(sub.unit.id, status="done" if outcome.status == "done" and not outcome.missing
                            and outcome.exit_code == 0 else "failed", node=outcome.node,
                            done=len(sub.unit.cells) - len(outcome.missing),
                            note=_note(outcome))
        for unit_id, entry in snapshot.items():
            if progress.state.get(unit_id, {}).get("status") in ("waiting", "running"):
                progress.update(unit_id, status="running", node=entry.get("node"), done=entry.get("done", 0),
                                note=f"attempt {entry['attempts']}" if entry.get("attempts", 1) > 1 else None)
        progress.draw()
        now = time.monotonic()
        if pending and now - last_route_check >= 5:
            last_route_check = now
            _cancel_unroutable(ray, pending, routing.alive_nodes(ray.nodes()), opts.node_wait_s, now)


def sub_reason(sub: _Submitted) -> str | None:
    if sub.unroutable_since is not None:
        return f"no alive node with a {routing.SLOT} and labels {routing.describe(sub.wanted)}"
    return None


def _note(outcome: UnitOutcome) -> str | None:
    if outcome.status != "done":
        return outcome.reason
    parts = [f"exit {outcome.exit_code}"] if outcome.exit_code else []
    if outcome.attempts > 1:
        parts.append(f"{outcome.attempts} attempts: {', '.join(node_name(n) for n in outcome.nodes)}")
    if outcome.started and outcome.ended:
        parts.append(f"{outcome.ended - outcome.started:.1f} s")
    return "; ".join(parts) or None


def _cancel_unroutable(ray, pending: dict, nodes, wait_s: float, now: float) -> None:
    """Cancel units that have had no alive node able to take them for ``wait_s`` seconds."""
    for ref, sub in pending.items():
        if any(n.matches(sub.wanted, sub.gpus) for n in nodes):
            sub.unroutable_since = None
            continue
        if sub.unroutable_since is None:
            sub.unroutable_since = now
        elif now - sub.unroutable_since >= wait_s:
            ray.cancel(ref, force=True)


def _cancel(ray, board, refs: list) -> None:
    """Ctrl-C: every running unit kills its pytest and returns (the board's ``stop``, polled by the node
    tasks); what has not started ends with this driver (Ray drops a finished job's tasks, and a pytest
    dies with its worker, see node_task). Not ``ray.cancel`` of running tasks: in Ray 2.60, forced or
    not, it crashed the driver's core worker now and then ("Tried to complete task that was not
    pending")."""
    try:
        board.stop.remote()
    except Exception:  # noqa: BLE001 - a lost board: the driver's exit still ends the tasks
        return
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=20)


def _commit_info() -> dict[str, Any] | None:
    """The driver's commit, as pytest-benchmark records it for a local run."""
    try:
        from pytest_benchmark.utils import get_commit_info

        return get_commit_info()
    except Exception:  # noqa: BLE001 - no git, or not a repository: the units' own (unversioned) stays
        return None


def _write(opts: SweepOptions, data: dict[str, Any], stream) -> None:
    out = opts.benchmark_json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    stream.write(f"quantbench sweep: wrote {out} and the journal {opts.journal_path}\n")
    if opts.report_dir:
        from quantbench.reports import write_reports

        written = write_reports(out, opts.report_dir, command=opts.command)
        stream.write(f"quantbench sweep: wrote {len(written)} report files to {opts.report_dir} "
                     f"(open {opts.report_dir}/index.html)\n")
