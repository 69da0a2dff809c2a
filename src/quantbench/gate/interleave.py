"""``quantbench ab``: the baseline and the candidate timed in the same job, interleaved A B B A.

A stored baseline was measured on another day, often on another VM; between two runs of one commit
on the 2-core VMs single cells moved by tens of percent (gate/drift.py). Chromium's Pinpoint and
asv's ``continuous`` time both sides in one job instead. Here each side's timed cells run as a fresh
pytest process per block, in the order A B, B A, A B, ... (ABBA: a machine that speeds up or slows
down steadily over the job favours neither side), every run's output kept under ``out/runs``. Each
side's runs are then pooled into one run file whose cells carry one process per block
(gate/pooled.py), and the gate pairs the two sides block by block (gate/processes.py).

A side is an interpreter (a virtual environment), a suite and an environment for it:

* another **suite file** (another model or checkpoint, another method's options): ``--baseline-suite``;
* another **commit**: ``--baseline-ref REF`` checks it out as a git worktree and runs its
  ``quantbench`` from there (``PYTHONPATH``) in this environment, when its ``pyproject.toml`` is this
  checkout's; when the dependencies differ, give that commit's environment with ``--baseline-python``;
* another **dependency set**: ``--baseline-python PATH`` (the interpreter of a second environment with
  quantbench installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from quantbench.errors import QuantbenchError

BASELINE, CANDIDATE = "baseline", "candidate"


@dataclass(frozen=True)
class Side:
    label: str
    python: str
    suite: str
    env: dict[str, str] = field(default_factory=dict)
    describe: str = ""
    #: Where its pytest runs. A commit's side runs in its worktree: pytest-benchmark reads the
    #: run's ``commit_info`` from the working directory, and pytest its rootdir and conftest.py.
    cwd: Path | None = None

    def command(self, out_json: Path, pytest_args: tuple[str, ...]) -> list[str]:
        # Only the timed cells: quality, fairness and size do not change between blocks.
        return [self.python, "-m", "pytest", "--pyargs", "quantbench.bench.test_performance", "--suite", self.suite,
                "--benchmark-json", str(out_json), "-q", "-p", "no:cacheprovider", *pytest_args]


def default_blocks(suite: str) -> int:
    """Four blocks when each run takes every cell in 3 or more processes (``measure.processes``), else
    eight. Four is the fewest a paired test may use (gate/processes.py), and on the study's Xeon VM four
    blocks of three processes caught every 20 % plant and a natural 10.3 % one 9 times in 9, with no clean
    job failing (docs/gating.md, "The study"); two blocks leave each side's mean two runs."""
    from quantbench.suite import load_suite

    return 4 if load_suite(suite).measure.processes >= 3 else 8


def schedule(blocks: int) -> list[tuple[int, str]]:
    """(block, side) in run order: A B, B A, A B, ..."""
    if blocks < 2:
        raise QuantbenchError(f"--blocks must be at least 2 (a paired test needs two blocks), got {blocks}")
    order = []
    for block in range(blocks):
        pair = (BASELINE, CANDIDATE) if block % 2 == 0 else (CANDIDATE, BASELINE)
        order.extend((block, side) for side in pair)
    return order


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise QuantbenchError(f"git {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return done.stdout


def checkout(ref: str, repo: Path, where: Path, *, python: str | None) -> tuple[Path, dict[str, str]]:
    """A worktree of ``ref`` at ``where``, and the environment that runs its quantbench.

    Without ``python``, ``ref`` runs in this environment, so its dependencies must be this checkout's."""
    _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    if python is None:
        theirs = _git(repo, "show", f"{ref}:pyproject.toml")
        ours = (repo / "pyproject.toml").read_text(encoding="utf-8")
        if theirs != ours:
            raise QuantbenchError(f"--baseline-ref {ref}: its pyproject.toml differs from this checkout's, so its "
                                  "dependencies may too; give that commit's environment with --baseline-python")
    if where.exists():
        _git(repo, "worktree", "remove", "--force", str(where))
    _git(repo, "worktree", "add", "--detach", str(where), ref)
    source = where / "src"
    return where, {"PYTHONPATH": os.pathsep.join([str(source), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def check_imports_from(python: str, env: dict[str, str], where: Path) -> None:
    """The baseline must run the checked-out commit's quantbench, not this checkout's: said, never assumed."""
    done = subprocess.run([python, "-c", "import quantbench; print(quantbench.__file__)"], capture_output=True,
                          text=True, env={**os.environ, **env})
    found = done.stdout.strip()
    if done.returncode != 0 or not Path(found).resolve().is_relative_to(where.resolve()):
        raise QuantbenchError(f"the baseline's interpreter {python} imports quantbench from "
                              f"{found or 'nowhere'} (exit {done.returncode}), not from the worktree {where}")


def remove_checkout(repo: Path, where: Path) -> None:
    subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)


@dataclass
class RunLog:
    block: int
    side: str
    seconds: float
    returncode: int
    json: Path
    log: Path

    def to_dict(self) -> dict[str, object]:
        return {"block": self.block, "side": self.side, "seconds": round(self.seconds, 1),
                "returncode": self.returncode, "json": str(self.json), "log": str(self.log)}


def run_interleaved(baseline: Side, candidate: Side, *, blocks: int, out_dir: Path,
                    pytest_args: tuple[str, ...] = (), echo: Callable[[str], None] = print) -> list[RunLog]:
    """Run both sides in :func:`schedule` order; returns each run's record. A run that writes no
    results stops the job with the run's log named (pytest's exit 1, a failed cell, does not)."""
    runs_dir = out_dir.resolve() / "runs"  # absolute: a side may run in another directory
    runs_dir.mkdir(parents=True, exist_ok=True)
    sides = {BASELINE: baseline, CANDIDATE: candidate}
    order = schedule(blocks)
    logs = []
    for i, (block, label) in enumerate(order, 1):
        side = sides[label]
        out_json, out_log = runs_dir / f"{label}-{block}.json", runs_dir / f"{label}-{block}.log"
        out_json.unlink(missing_ok=True)
        started = time.perf_counter()
        with open(out_log, "w", encoding="utf-8") as log:
            done = subprocess.run(side.command(out_json, pytest_args), stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, **side.env}, cwd=side.cwd)
        seconds = time.perf_counter() - started
        echo(f"quantbench ab: [{i}/{len(order)}] block {block} {label}: {seconds:.0f} s (pytest exit {done.returncode})")
        sys.stdout.flush()
        if not out_json.exists():
            tail = out_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise QuantbenchError(f"the {label} run of block {block} wrote no results (pytest exit {done.returncode}: "
                                  f"{tail[0]}); its log: {out_log}")
        logs.append(RunLog(block, label, seconds, done.returncode, out_json, out_log))
    return logs
