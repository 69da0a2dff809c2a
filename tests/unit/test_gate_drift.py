"""Drift correction in the gate: a slower machine passes, a slower variant on any machine fails.

Runs are synthetic: each round's time is the cell's true time times the machine's speed at that
moment times a little noise, and the paired reference time is the reference's true time times
the same machine speed (as measured on the CI VM, where round / reference held within ±5 %).
"""

from __future__ import annotations

import random
import re

import pytest

from quantbench.gate import gate_runs, load_policy
from quantbench.gate.drift import Correction, correction
from quantbench.gate.result import FAIL, PASS, REGRESSION
from quantbench.results import parse_run
from tests.run_factory import make_run

CELLS = dict(batch_sizes=(8,), variants=(("fp32", "pytorch"), ("dynamic_int8", "pytorch")))
REFERENCE = {"name": "torch-bert-1layer-384h-fp32-bs4-seq64", "device": "cpu", "torch": "2.13.0", "threads": 2}
REF_S = 0.008


def with_reference(run: dict, *, seed: int, machine: float = 1.0, slow_down: dict[str, float] | None = None,
                   regime_shift: float = 1.0, reference: dict | None = None) -> dict:
    """Rewrite every latency cell's rounds as ``true time * machine speed``, with paired references.

    ``machine`` scales the whole run; ``regime_shift`` multiplies the second half of each cell's
    rounds (the machine changing speed mid-cell); ``slow_down`` maps a quant to a real slowdown of
    that variant alone (the reference does not see it).
    """
    rng = random.Random(seed)
    for bench in run["benchmarks"]:
        if not bench["name"].startswith("test_latency"):
            continue
        samples = bench["stats"]["data"]
        true_s = sorted(samples)[len(samples) // 2] * (slow_down or {}).get(bench["params"]["quant"], 1.0)
        rounds, refs = [], []
        for i in range(len(samples)):
            speed = machine * (regime_shift if i >= len(samples) // 2 else 1.0)
            rounds.append(true_s * speed * (1 + rng.gauss(0, 0.02)))
            refs.append(REF_S * speed * (1 + rng.gauss(0, 0.02)))
        bench["stats"]["data"] = rounds
        ms = sorted(r * 1000 for r in rounds)
        p50 = ms[len(ms) // 2] if len(ms) % 2 else (ms[len(ms) // 2 - 1] + ms[len(ms) // 2]) / 2
        extra = bench["extra_info"]
        extra["latency_ms"] = {**extra["latency_ms"], "p50": p50, "p95": ms[int(0.95 * (len(ms) - 1))]}
        extra["throughput_samples_per_s"] = bench["params"]["batch_size"] / (p50 / 1000)
        extra["throughput_tokens_per_s"] = extra["throughput_samples_per_s"] * bench["params"]["seq_len"]
        extra["reference"] = dict(reference or REFERENCE)
        extra["reference_s"] = refs
    return run


def gate(base: dict, cur: dict, **policy):
    return gate_runs(parse_run(base), parse_run(cur), policy=load_policy(policy or None))


def p50_rows(result, quant=None):
    return [r for r in result.rows if r.metric == "latency_p50_ms" and (quant is None or r.key[2] == quant)]


def test_a_slower_machine_alone_passes_and_says_how_much_slower():
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, machine=1.4)
    result = gate(base, cur)
    assert result.exit_code == 0, result.render_table()
    for row in p50_rows(result):
        assert row.raw_change == pytest.approx(0.40, abs=0.04)  # measured 40 % slower...
        assert abs(row.change) < 0.04  # ...judged unchanged
        assert row.drift == pytest.approx(1.4, abs=0.03)
    (summary,) = [w for w in result.warnings if "drift-corrected in 2 cells" in w]
    assert float(re.search(r"reference ran x([0-9.]+)", summary).group(1)) == pytest.approx(1.4, abs=0.03)
    assert re.search(r"raw \+[34][0-9]\.[0-9]%, machine x1\.[34]", result.render_table())


def test_the_same_runs_fail_without_drift_correction():
    """The control: the 40 % machine slowdown above is a failure when judged on raw rounds."""
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, machine=1.4)
    result = gate(base, cur, drift_correction=False)
    assert result.exit_code == 1
    assert {r.key[2] for r in p50_rows(result) if r.verdict == REGRESSION} == {"fp32", "dynamic_int8"}


def test_a_slower_variant_fails_on_a_steady_machine():
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, slow_down={"dynamic_int8": 1.4})
    result = gate(base, cur)
    assert result.exit_code == 1
    failed = [r for r in result.failures if r.metric == "latency_p50_ms"]
    assert [r.cell for r in failed] == ["test_latency[minilm-tweets-dynamic_int8-pytorch-cpu-bs8-seq64]"]
    assert failed[0].change == pytest.approx(0.40, abs=0.04) and failed[0].p_value < 0.01
    assert [r.verdict for r in p50_rows(result, "fp32")] == [PASS]


def test_a_slower_variant_fails_on_a_faster_machine_too():
    """The machine got 30 % faster and hid a 40 % slowdown in the raw figures: still a regression."""
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, machine=0.7, slow_down={"dynamic_int8": 1.4})
    result = gate(base, cur)
    (row,) = p50_rows(result, "dynamic_int8")
    assert row.raw_change == pytest.approx(0.7 * 1.4 - 1, abs=0.04)  # about -2 %: raw looks fine
    assert row.verdict == REGRESSION and row.outcome == FAIL
    assert row.change == pytest.approx(0.40, abs=0.04)


def test_a_speed_change_in_the_middle_of_a_cell_is_paired_round_by_round():
    """Half the current rounds ran 60 % slower: per-round pairing sees no change in the variant."""
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, regime_shift=1.6)
    result = gate(base, cur)
    assert result.exit_code == 0, result.render_table()
    assert all(abs(r.change) < 0.04 for r in p50_rows(result))


@pytest.mark.parametrize("field, value", [("torch", "2.12.0"), ("threads", 4), ("name", "other-workload")])
def test_a_different_reference_is_not_divided_out(field, value):
    """Other software or threads could slow the reference and the variant alike: judge raw rounds."""
    base = with_reference(make_run(seed=1, **CELLS), seed=1)
    cur = with_reference(make_run(seed=1, **CELLS), seed=2, machine=1.4, reference={**REFERENCE, field: value})
    result = gate(base, cur)
    assert result.exit_code == 1  # the 40 % is judged as measured
    assert all(r.drift is None for r in p50_rows(result))
    assert any(f"without drift correction (the reference differs ({field}" in w for w in result.warnings)


def test_a_run_without_references_is_judged_raw_with_a_warning():
    base = make_run(seed=1, **CELLS)  # e.g. measured with drift_reference: false
    cur = with_reference(make_run(seed=1, **CELLS), seed=2)
    result = gate(base, cur)
    assert all(r.drift is None for r in p50_rows(result))
    assert any("baseline: no drift reference recorded" in w for w in result.warnings)


def test_misaligned_or_broken_references_give_a_reason():
    run = with_reference(make_run(seed=1, **CELLS), seed=1)
    short = with_reference(make_run(seed=1, **CELLS), seed=2)
    short["benchmarks"][0]["extra_info"]["reference_s"].pop()
    bad = with_reference(make_run(seed=1, **CELLS), seed=3)
    bad["benchmarks"][0]["extra_info"]["reference_s"][0] = 0.0
    base, cur_short, cur_bad = (parse_run(r).records[0] for r in (run, short, bad))
    assert correction(base, cur_short) == "current: 19 reference times for 20 rounds"
    assert correction(base, cur_bad) == "current: reference times are not all positive and finite"
    assert isinstance(correction(base, base), Correction)
