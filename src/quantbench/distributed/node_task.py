"""What runs on a node: one unit as ``python -m pytest bench/ --cells-from FILE`` in a subprocess.

A subprocess, not ``pytest.main`` in the Ray worker: Ray reuses workers, and a second unit in
the same interpreter would inherit the first one's imports, caches and allocator state.

This module imports nothing from quantbench and nothing outside the standard library at import
time: the driver ships it to the nodes by value, so a node runs the driver's version of it
whatever quantbench it has installed. The subprocess runs the shipped working tree's code
(``PYTHONPATH=<working dir>/src``) on the node's own Python and libraries.

Thread variables are set here, for the subprocess: from the suite's ``measure.threads`` when
it pins them, otherwise from the CPUs this node lets the process use. Ray itself would leave
``OMP_NUM_THREADS`` at the task's CPU count (1), which would time every cell single-threaded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Thread pools the benchmark's libraries read at start-up.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
LOG_TAIL_CHARS = 6000
POLL_S = 0.5


def node_cpus() -> int:
    """CPUs this process may use on the node (its affinity mask, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_env(threads: int | None) -> dict[str, str]:
    n = str(threads or node_cpus())
    return {name: n for name in THREAD_VARS}


def _die_with_parent() -> None:
    """Runs in the child before exec: if the Ray worker dies (node lost, forced cancel), so does pytest."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chars))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def node_identity() -> dict[str, Any]:
    """This node as Ray and the OS name it: what every result and progress line carries."""
    import ray

    ctx = ray.get_runtime_context()
    return {"node_id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname(),
            "labels": dict(ctx.get_node_labels() or {}), "cpus": node_cpus()}


def _stop_requested(board: Any) -> bool:
    if board is None:
        return False
    import ray

    try:
        return bool(ray.get(board.stopped.remote(), timeout=5))
    except Exception:  # noqa: BLE001 - a lost board stops nothing: the driver's exit still ends the task
        return False


def run_unit(unit_id: str, cell_keys: list[str], pytest_args: list[str], threads: int | None,
             board: Any = None, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one unit's cells on this node; return its run JSON, node, exit code, times and log tail.

    A cell that fails is a result (pytest exit 1), returned like any other. Only the loss of the
    worker or the node raises, and Ray retries the task on another node with the same labels.
    """
    node = node_identity()
    workdir = Path.cwd()  # runtime_env working_dir: the driver's tree, unpacked on this node
    env = {**os.environ, **(extra_env or {}), **thread_env(threads)}
    src = workdir / "src"
    if (src / "quantbench").is_dir():
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    started = time.time()
    if board is not None:
        board.started.remote(unit_id, node, started)
    with tempfile.TemporaryDirectory(prefix=f"quantbench-{unit_id[:40]}-") as tmp:
        tmp_path = Path(tmp)
        cells_file, out, log = tmp_path / "cells.txt", tmp_path / "unit.json", tmp_path / "pytest.log"
        cells_file.write_text("\n".join(cell_keys) + "\n", encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "bench", "--cells-from", str(cells_file),
                   "--benchmark-json", str(out), "-p", "no:cacheprovider", "-q", *pytest_args]
        with open(log, "wb") as log_handle:
            proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=log_handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - only setsid and prctl
            journal, done, polls = out.with_suffix(".jsonl"), 0, 0
            try:
                while proc.poll() is None:
                    time.sleep(POLL_S)
                    now_done = _count_lines(journal)
                    if board is not None and now_done != done:
                        board.progress.remote(unit_id, now_done)
                    done, polls = now_done, polls + 1
                    if polls % 4 == 0 and _stop_requested(board):  # Ctrl-C in the driver
                        _kill(proc)
                        return {"unit": unit_id, "node": node, "cancelled": True}
            except BaseException:  # ray.cancel (KeyboardInterrupt), or the worker shutting down
                _kill(proc)
                raise
        ended = time.time()
        run = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
        return {"unit": unit_id, "node": node, "exit_code": proc.returncode, "started": started, "ended": ended,
                "run": run, "journal": _read_jsonl(journal), "machine_info": None if run else _machine_info(env),
                "log_tail": _tail(log), "command": command[1:],
                "threads": {name: env[name] for name in THREAD_VARS},
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def measure_limits(device: str, kernels: list[str], threads: int | None,
                   extra_env: dict[str, str] | None = None, timeout_s: float = 600.0) -> dict[str, Any]:
    """This node's machine limits for ``device`` (``quantbench machine --json`` in a subprocess, with
    the threads a unit gets), measured now or read from its cache. The driver runs it on one node
    per host before any unit, so nothing else runs there while the peaks are timed, and every unit
    on the host then finds them cached."""
    node = node_identity()
    workdir = Path.cwd()
    env = {**os.environ, **(extra_env or {}), **thread_env(threads)}
    src = workdir / "src"
    if (src / "quantbench").is_dir():
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    args = ["machine", "--device", device, "--kernels", ",".join(kernels), "--json",
            *(["--threads", str(threads)] if threads else [])]
    code = f"from quantbench.cli import main; raise SystemExit(main({args!r}))"
    started = time.time()
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    out: dict[str, Any] = {"node": node, "device": device, "exit_code": done.returncode,
                           "seconds": round(time.time() - started, 2)}
    if done.returncode == 0:
        limits = json.loads(done.stdout)
        out.update(cached=bool(limits.get("cached")), measured_now=limits.get("measured_now") or [],
                   limits_seconds=limits.get("seconds"))
    else:
        out["error"] = (done.stderr or done.stdout).strip()[-LOG_TAIL_CHARS:]
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The unit's own journal: every cell pytest finished, even when it wrote no run file (it crashed,
    or every cell was skipped and pytest-benchmark had nothing to save)."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a torn last line
            continue
    return records


def _machine_info(env: dict[str, str]) -> dict[str, Any] | None:
    """This node's machine_info when pytest wrote no run file (what the merged file keeps per node)."""
    code = ("import json, platform; from quantbench.hardware.machine import machine_info; "
            "print(json.dumps({'node': platform.node(), 'machine': platform.machine(), 'system': platform.system(), "
            "'release': platform.release(), 'python_version': platform.python_version(), "
            "'quantbench': machine_info()}, default=str))")
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                              check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
