"""The gate on whole processes (gate/processes.py): runs whose cells took their rounds in several
processes, as ``measure.processes`` and ``quantbench ab`` record them.

The synthetic processes differ the way the 2-core VMs' did: each process's median moves by a few
percent (a log-normal process effect), the rounds inside a process hardly at all, and a machine
factor can slow a whole process, which the drift reference timed beside it sees.
"""

from __future__ import annotations

import math
import random

import pytest

from quantbench.gate import gate_runs, load_policy
from quantbench.gate.processes import process_evidence
from quantbench.gate.result import IMPROVEMENT, REGRESSION, UNRESOLVED
from quantbench.results import parse_run
from tests.run_factory import make_run

VARIANTS = (("fp32", "pytorch"), ("dynamic_int8", "pytorch"), ("fp32", "onnxruntime"),
            ("dynamic_int8", "onnxruntime"), ("static_int8", "onnxruntime"), ("nf4", "pytorch"))
TARGET = "minilm-tweets-fp32-onnxruntime-cpu-bs8-seq64"


def run_with_processes(seed: int, *, processes: int = 5, process_sd: float = 0.04, slow: dict | None = None,
                       machine: list[float] | None = None, reference_sd: float = 0.01, blocks: list[int] | None = None):
    """A run of six cells at batch 8, each with ``processes`` processes.

    ``slow``: cell id -> factor on its processes (a real regression); ``machine``: one factor per process
    (the machine's speed then, seen by the reference too); ``blocks``: the block of each process (ab)."""
    rng = random.Random(seed)
    run = make_run(seed=seed, batch_sizes=(8,), variants=VARIANTS, with_accuracy=False, rounds=12, noise=0.01)
    for bench in run["benchmarks"]:
        base_ms = bench["extra_info"]["latency_ms"]["p50"]
        factor = (slow or {}).get(bench["param"], 1.0)
        data, refs, procs = [], [], []
        for i in range(processes):
            speed = machine[i] if machine else 1.0
            median = base_ms * factor * speed * math.exp(rng.gauss(0, process_sd))
            reference = 5.0 * speed * math.exp(rng.gauss(0, reference_sd))
            rounds = [median / 1000 * math.exp(rng.gauss(0, 0.005)) for _ in range(12)]
            data += rounds
            refs += [reference / 1000] * 12
            procs.append({"origin": "harness" if i == 0 else "worker", "pid": 100 + i, "rounds": 12, "stop": "converged",
                          "median_ms": median, "reference_median_ms": reference,
                          **({"block": blocks[i]} if blocks else {})})
        bench["stats"]["data"] = data
        extra = bench["extra_info"]
        extra["processes"] = procs
        extra["reference_s"] = refs
        extra["reference"] = {"name": "torch-bert-layer", "device": "cpu", "threads": 2}
        ms = sorted(x * 1000 for x in data)
        extra["latency_ms"] = {**extra["latency_ms"], "p50": ms[len(ms) // 2]}
        extra["throughput_samples_per_s"] = 8 / (extra["latency_ms"]["p50"] / 1000)
    return run


def gate(base, cur, **policy):
    return gate_runs(parse_run(base), parse_run(cur), policy=load_policy(policy or None))


def p50(result, cell=TARGET):
    (row,) = [r for r in result.rows if r.metric == "latency_p50_ms" and r.cell == f"test_latency[{cell}]"]
    return row


def test_independent_runs_of_one_commit_pass_with_an_interval_over_the_processes():
    failures = 0
    for seed in range(10):
        result = gate(run_with_processes(2 * seed), run_with_processes(2 * seed + 1))
        failures += result.exit_code != 0
        row = p50(result)
        assert row.mde is not None and 0 < row.mde < 0.5
        assert row.ci is not None and row.ci[0] < 0 < row.ci[1] or row.verdict != REGRESSION
    # 5 processes a side with a 4 % process effect: at alpha 0.01, at most a stray false alarm in ten pairs.
    assert failures <= 1


@pytest.mark.parametrize("factor, verdict", [(1.25, REGRESSION), (0.75, IMPROVEMENT)])
def test_a_real_change_in_one_cell_is_judged_on_the_processes(factor, verdict):
    result = gate(run_with_processes(1), run_with_processes(2, slow={TARGET: factor}))
    row = p50(result)
    assert row.verdict == verdict, row.note
    assert (result.exit_code == 1) == (verdict == REGRESSION)
    assert row.change == pytest.approx(factor - 1, abs=0.08)
    assert any("judged on whole processes" in w and "5 vs 5" in w for w in result.warnings)
    # The other cells did not move: none of them is called a change.
    others = {r.verdict for r in result.rows if r.metric == "latency_p50_ms" and r is not row}
    assert not others & {REGRESSION, IMPROVEMENT}


def test_a_change_the_processes_cannot_resolve_is_unresolved_with_its_mde():
    # Two processes a side, 10 % apart: a t interval with one degree of freedom cannot settle 15 %.
    result = gate(run_with_processes(1, processes=2, process_sd=0.1),
                  run_with_processes(2, processes=2, process_sd=0.1, slow={TARGET: 1.15}))
    row = p50(result)
    assert row.verdict == UNRESOLVED
    assert row.mde > 0.15 and "processes' ratio" in row.note and "detects a change of" in row.note


def test_fewer_than_two_processes_a_side_falls_back_to_the_rounds():
    base = run_with_processes(1, processes=1)
    cur = run_with_processes(2, processes=1)
    (b,) = [x for x in parse_run(base).records if x.cell_id == TARGET]
    (c,) = [x for x in parse_run(cur).records if x.cell_id == TARGET]
    assert process_evidence(b, c, alpha=0.01, references_match=True) is None
    assert not any("judged on whole processes" in w for w in gate(base, cur).warnings)


def test_the_reference_divides_out_a_machine_that_changed_speed_between_processes():
    # The machine ran 30 % slower in some processes of the candidate: the reference saw it, so dividing
    # each process by its own reference is the narrower interval and nothing is flagged.
    base = run_with_processes(1, machine=[1.0] * 5)
    cur = run_with_processes(2, machine=[1.0, 1.3, 1.0, 1.3, 1.3])
    (b,) = [x for x in parse_run(base).records if x.cell_id == TARGET]
    (c,) = [x for x in parse_run(cur).records if x.cell_id == TARGET]
    evidence = process_evidence(b, c, alpha=0.01, references_match=True)
    assert "each divided by its own drift reference" in evidence.method
    assert evidence.ratio == pytest.approx(1.0, abs=0.08)
    # Without usable references the same processes are judged raw, and the slow machine shows.
    raw = process_evidence(b, c, alpha=0.01, references_match=False)
    assert "raw medians" in raw.method and raw.ratio > 1.1


def test_a_noisy_reference_on_a_steady_machine_is_left_out():
    base = run_with_processes(1, process_sd=0.01, reference_sd=0.08)
    cur = run_with_processes(2, process_sd=0.01, reference_sd=0.08)
    (b,) = [x for x in parse_run(base).records if x.cell_id == TARGET]
    (c,) = [x for x in parse_run(cur).records if x.cell_id == TARGET]
    assert "raw medians" in process_evidence(b, c, alpha=0.01, references_match=True).method


def test_interleaved_blocks_pair_away_a_machine_that_drifts_over_the_job():
    # Four blocks; the machine's speed changes from block to block by up to 40 %, the same for both sides
    # of a block. Paired by block, a 10 % slowdown is a regression; unpaired it would be lost in the drift.
    speeds = [1.0, 1.4, 0.9, 1.25]
    kwargs = dict(processes=4, process_sd=0.02, machine=speeds, reference_sd=0.3, blocks=[0, 1, 2, 3])
    base = run_with_processes(1, **kwargs)
    cur = run_with_processes(2, slow={TARGET: 1.12}, **kwargs)
    result = gate(base, cur)
    row = p50(result)
    assert row.verdict == REGRESSION, row.note
    assert any("interleaved, paired by block" in w for w in result.warnings)
    # No between-run noise is added to an interleaved comparison: both sides shared the job.
    assert row.noise is None


def test_residual_noise_is_what_the_processes_do_not_explain():
    from quantbench.gate.compare import residual_noise
    from quantbench.gate.stats import Evidence

    unpaired = [Evidence(5, 5, True, level="processes", se_log=0.03, df=8, method="unpaired, raw medians")] * 6
    paired = [Evidence(4, 4, True, level="processes", se_log=0.03, df=3, method="interleaved, paired by block")]
    assert residual_noise({"latency_p50_ms": 0.05}, unpaired)["latency_p50_ms"] == pytest.approx(0.04)
    # Less between-run noise than the processes already carry: nothing is added.
    assert residual_noise({"latency_p50_ms": 0.02}, unpaired)["latency_p50_ms"] == 0.0
    assert residual_noise({"latency_p50_ms": 0.05}, paired) == {}
