"""A timing the rounds cannot resolve is *unresolved*, never a pass, and more rounds resolve it.

The case from an AVX2-only Zen 3 (run 3764199): fp32 bs8 stopped at 10 rounds, 8 near 185 ms and
2 near 122 ms. With a 50 % slowdown planted, the 99 % interval of the shift ran from about +3 %
to +119 %: the gate called it "within noise" and passed. Rounds taken until the median converges
(measures/rounds.py) resolve the same plant into a regression.
"""

from __future__ import annotations

import random

from quantbench import cli
from quantbench.gate import gate_runs, load_policy
from quantbench.gate.result import FAIL, NOISE, OK, PASS, REGRESSION, UNRESOLVED, WARN
from quantbench.measures import rounds
from quantbench.results import parse_run
from tests.run_factory import make_run

CELL = "minilm-tweets-fp32-pytorch-cpu-bs8-seq64"


def with_rounds(run: dict, samples: list[float]) -> dict:
    """Set one cell's raw rounds (and the figures read from them)."""
    for bench in run["benchmarks"]:
        if bench.get("param") == CELL and bench["name"].startswith("test_latency"):
            bench["stats"]["data"] = list(samples)
            ms = sorted(s * 1000 for s in samples)
            p50 = ms[len(ms) // 2] if len(ms) % 2 else (ms[len(ms) // 2 - 1] + ms[len(ms) // 2]) / 2
            extra = bench["extra_info"]
            extra["latency_ms"] = {**extra["latency_ms"], "p50": p50, "p95": ms[int(0.95 * (len(ms) - 1))]}
            extra["throughput_samples_per_s"] = 8 / (p50 / 1000)
            extra["throughput_tokens_per_s"] = 8 * 64 / (p50 / 1000)
            return run
    raise AssertionError(f"{CELL} not in the run")


def bimodal(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.choice((0.185,) * 4 + (0.122,)) * (1 + rng.gauss(0, 0.01)) for _ in range(n)]


def ten_zen3_rounds(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [0.185 * (1 + rng.gauss(0, 0.01)) for _ in range(8)] + [0.121, 0.123]


def p50_row(result):
    [row] = [r for r in result.rows if r.metric == "latency_p50_ms" and CELL in r.cell]
    return row


def gate(base_samples, cur_samples, **policy):
    base = with_rounds(make_run(seed=1, variants=(("fp32", "pytorch"),)), base_samples)
    cur = with_rounds(make_run(seed=1, variants=(("fp32", "pytorch"),)), cur_samples)
    return gate_runs(parse_run(base), parse_run(cur), policy=load_policy(policy or None)), base, cur


def test_a_planted_50_percent_slowdown_on_ten_bimodal_rounds_is_unresolved_not_passed():
    base = ten_zen3_rounds(1)
    result, _, _ = gate(base, [s * 1.5 for s in base])
    row = p50_row(result)
    assert row.verdict == UNRESOLVED and row.outcome == WARN
    assert row.ci[0] < 0.10 < 0.5 < row.ci[1]  # the interval straddles the threshold
    assert "reaches past the 10% threshold without clearing it" in row.note
    assert result.counts()[UNRESOLVED] >= 1 and "unresolved" in result.headline()
    assert result.exit_code == 0  # warn by default
    strict, _, _ = gate(base, [s * 1.5 for s in base], on_unresolved="fail")
    assert p50_row(strict).outcome == FAIL and strict.exit_code == 1


def test_the_same_plant_on_rounds_that_converged_is_a_regression():
    rule = rounds.StopRule(min_rounds=10, max_rounds=200, min_time_s=0.5, max_time_s=60, precision=0.05)
    series = bimodal(400, seed=2)
    taken = []
    for s in series:  # take rounds as a timed cell would, until the median converges
        taken.append(s)
        if rule.stop(rounds=len(taken), elapsed_s=sum(taken), last_s=s, series=taken):
            break
    assert len(taken) > 10 and rule.converged(taken)
    result, _, _ = gate(taken, [s * 1.5 for s in bimodal(len(taken), seed=3)])
    row = p50_row(result)
    assert (row.verdict, row.outcome) == (REGRESSION, FAIL) and result.exit_code == 1


def test_an_unchanged_converged_cell_passes_and_a_small_real_shift_is_not_unresolved():
    series = [0.1 * (1 + random.Random(4).gauss(0, 0.005)) for _ in range(40)]
    same, _, _ = gate(series, [s * 1.0 for s in series])
    assert p50_row(same).verdict == PASS
    shifted, _, _ = gate(series, [s * 1.03 for s in series])  # +3 %: resolved inside the 10 % threshold
    assert p50_row(shifted).verdict in (PASS, NOISE) and p50_row(shifted).outcome == OK


def test_the_cli_fails_an_unresolved_cell_under_unresolved_fail(tmp_path, capsys):
    import json

    base = ten_zen3_rounds(1)
    _, base_run, cur_run = gate(base, [s * 1.5 for s in base])
    (tmp_path / "b.json").write_text(json.dumps(base_run))
    (tmp_path / "c.json").write_text(json.dumps(cur_run))
    assert cli.main(["gate", str(tmp_path / "b.json"), str(tmp_path / "c.json")]) == 0
    assert "unresolved" in capsys.readouterr().out
    assert cli.main(["gate", str(tmp_path / "b.json"), str(tmp_path / "c.json"), "--unresolved", "fail"]) == 1
    assert "UNRESOLVED" in capsys.readouterr().out
