"""``quantbench ab``'s parts: the A B B A schedule, the runs it starts, pooling each side's runs into
one process-sampled run (gate/interleave.py, gate/pooled.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantbench.errors import QuantbenchError
from quantbench.gate import gate_paths, interleave
from quantbench.gate.pooled import pool_runs
from quantbench.results import parse_run
from tests.run_factory import make_run


def test_schedule_alternates_so_a_steady_drift_favours_neither_side():
    order = interleave.schedule(4)
    assert order == [(0, "baseline"), (0, "candidate"), (1, "candidate"), (1, "baseline"),
                     (2, "baseline"), (2, "candidate"), (3, "candidate"), (3, "baseline")]
    # Mean position of each side's runs is the same: a linear drift cancels.
    mean = {side: sum(i for i, (_, s) in enumerate(order) if s == side) / 4 for side in ("baseline", "candidate")}
    assert mean["baseline"] == mean["candidate"]
    with pytest.raises(QuantbenchError, match="--blocks must be at least 2"):
        interleave.schedule(1)


def one_cell_run(seed: int, scale: float = 1.0) -> dict:
    run = make_run(seed=seed, batch_sizes=(8,), variants=(("fp32", "onnxruntime"),), with_accuracy=False,
                   latency_scale=scale, rounds=10)
    run["benchmarks"][0]["extra_info"]["timed_region"] = "model"  # a classification cell, as a sweep writes it
    return run


def test_pooling_keeps_every_run_as_a_process_of_its_block(tmp_path):
    paths = []
    for i, scale in enumerate((1.0, 1.2)):
        run = one_cell_run(i, scale)
        run["benchmarks"][0]["extra_info"]["reference_s"] = [0.005] * 10
        if i == 1:
            run["quantbench"]["failed"] = [{"test": "test_latency", "cell_id": "x", "reason": "OOM"}]
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(run))
    pooled = pool_runs(paths, [0, 1])
    (bench,) = pooled["benchmarks"]
    extra = bench["extra_info"]
    assert [p["block"] for p in extra["processes"]] == [0, 1]
    assert extra["pooled_runs"] == 2
    first = json.loads(paths[0].read_text())["benchmarks"][0]["stats"]["data"]
    second = json.loads(paths[1].read_text())["benchmarks"][0]["stats"]["data"]
    assert bench["stats"]["data"] == first + second and bench["stats"]["rounds"] == 20
    assert len(extra["reference_s"]) == 20
    # Each process is its run's median; the pooled p50 is recomputed from all rounds.
    assert extra["processes"][1]["median_ms"] / extra["processes"][0]["median_ms"] == pytest.approx(1.2, rel=0.1)
    ms = sorted(x * 1000 for x in first + second)
    assert extra["latency_ms"]["p50"] == pytest.approx((ms[9] + ms[10]) / 2, rel=1e-4)
    # A cell that failed in one run is failed in the pool.
    assert pooled["quantbench"]["failed"][0]["reason"] == "OOM"
    assert parse_run(pooled).records[0].extra_info["processes"][0]["block"] == 0


FAKE_PYTEST = '''#!{python}
import json, os, sys
args = sys.argv
out = args[args.index("--benchmark-json") + 1]
suite = args[args.index("--suite") + 1]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(suite + "\\n")
with open(os.environ["FAKE_LOG"] + ".cwd", "a") as log:
    log.write(os.getcwd() + "\\n")
if suite == "broken":
    print("ERROR: suite broken: no such suite")
    sys.exit(4)
run = json.load(open(os.environ["FAKE_RUN_" + suite]))
json.dump(run, open(out, "w"))
'''


@pytest.fixture
def fake_python(tmp_path, monkeypatch):
    """An interpreter stand-in whose ``-m pytest`` writes a prepared run file per suite."""
    script = tmp_path / "fake-python"
    script.write_text(FAKE_PYTEST.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "order.log"))
    for name, scale, seed in (("base", 1.0, 1), ("slow", 1.3, 2)):
        path = tmp_path / f"{name}.json"
        run = one_cell_run(seed, scale)
        run["benchmarks"][0]["extra_info"]["reference_s"] = [0.005] * 10
        path.write_text(json.dumps(run))
        monkeypatch.setenv(f"FAKE_RUN_{name}", str(path))
    return script


def test_runs_go_in_abba_order_and_each_side_is_pooled(tmp_path, fake_python):
    base = interleave.Side("baseline", str(fake_python), "base")
    cand = interleave.Side("candidate", str(fake_python), "slow")
    logs = interleave.run_interleaved(base, cand, blocks=3, out_dir=tmp_path / "ab", echo=lambda _: None)
    assert (tmp_path / "order.log").read_text().split() == ["base", "slow", "slow", "base", "base", "slow"]
    assert [(log.block, log.side) for log in logs] == interleave.schedule(3)
    assert all(log.json.exists() and log.returncode == 0 for log in logs)
    sides = {}
    for label in ("baseline", "candidate"):
        mine = [log for log in logs if log.side == label]
        sides[label] = tmp_path / f"{label}.json"
        sides[label].write_text(json.dumps(pool_runs([m.json for m in mine], [m.block for m in mine])))
    result = gate_paths(sides["baseline"], sides["candidate"])
    (row,) = [r for r in result.rows if r.metric == "latency_p50_ms"]
    # Identical processes in every block: the paired t test has no spread, and +30 % is a regression.
    assert row.verdict == "regression" and result.exit_code == 1
    assert any("interleaved" in w for w in result.warnings)


def test_a_commit_s_side_runs_in_its_worktree_so_its_run_records_that_commit(tmp_path, fake_python, monkeypatch):
    # pytest-benchmark takes commit_info from the working directory: a baseline commit run from this
    # checkout's directory would be stored under the candidate's commit (and use its conftest.py).
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    monkeypatch.chdir(tmp_path)
    base = interleave.Side("baseline", str(fake_python), "base", cwd=worktree)
    cand = interleave.Side("candidate", str(fake_python), "slow")
    logs = interleave.run_interleaved(base, cand, blocks=2, out_dir=Path("ab"), echo=lambda _: None)
    cwds = (tmp_path / "order.log.cwd").read_text().split()
    assert cwds == [str(worktree), str(tmp_path), str(tmp_path), str(worktree)]
    # The relative --out still receives every run, whichever directory wrote it.
    assert all(log.json.is_absolute() and log.json.exists() for log in logs)


def test_a_run_that_writes_nothing_stops_the_job_naming_its_log(tmp_path, fake_python):
    base = interleave.Side("baseline", str(fake_python), "base")
    broken = interleave.Side("candidate", str(fake_python), "broken")
    with pytest.raises(QuantbenchError, match=r"candidate run of block 0 wrote no results \(pytest exit 4: "
                                              r"ERROR: suite broken.*candidate-0.log"):
        interleave.run_interleaved(base, broken, blocks=2, out_dir=tmp_path / "ab", echo=lambda _: None)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_a_baseline_commit_runs_from_its_own_worktree_only_with_the_same_dependencies(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src" / "quantbench").mkdir(parents=True)
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (repo / "src" / "quantbench" / "marker.py").write_text("OLD = True\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "old")
    (repo / "src" / "quantbench" / "marker.py").write_text("OLD = False\n")
    where, env = interleave.checkout("HEAD", repo, tmp_path / "wt", python=None)
    assert (where / "src" / "quantbench" / "marker.py").read_text() == "OLD = True\n"
    assert env["PYTHONPATH"].split(":")[0] == str(where / "src")
    # This interpreter then imports the worktree's quantbench (PYTHONPATH precedes the editable install)...
    (where / "src" / "quantbench" / "__init__.py").write_text("")
    interleave.check_imports_from(sys.executable, env, where)
    # ...and one that imports another copy is refused, naming where it imported from.
    with pytest.raises(QuantbenchError, match="imports quantbench from .* not from the worktree"):
        interleave.check_imports_from(sys.executable, {}, where)
    interleave.remove_checkout(repo, where)
    assert not where.exists()
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['torch==9']\n")
    with pytest.raises(QuantbenchError, match="pyproject.toml differs.*--baseline-python"):
        interleave.checkout("HEAD", repo, tmp_path / "wt2", python=None)
    with pytest.raises(QuantbenchError, match="git rev-parse"):
        interleave.checkout("no-such-ref", repo, tmp_path / "wt3", python=None)
