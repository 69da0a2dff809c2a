#!/usr/bin/env python
"""How the gate against the history (gate/lookback.py) fares on synthetic histories (docs/history.md).

Each case is one cell's latency p50 on one machine: a history of LOOKBACK runs (one a commit), then the
run being gated, each 100 x exp(effect + noise), judged with the built-in policy's rule for latency_p50_ms
(10 %), the window's median and MAD, z 5 and the change point at the run's level (the defaults).

**Noise** as in scripts/changepoint_study.py (docs/gating.md, "The study", the Xeon family 6 model 167 VM,
2 cores): ``measured`` is Student t with 4 degrees of freedom scaled to a cell's between-run sd (3.4 % the
median cell, 4.3 % the noisiest ordinary cell, 10.3 % PyTorch dynamic int8); ``stress`` adds slow spells
of +10 to +30 % in 5 % of runs to a Gaussian at 3.4 %; ``gaussian`` is the median cell without the heavy tail.

**Cases**: ``same``: the run from the history's distribution (a false failure is a regression verdict);
``slower``: the run X % slower; ``step k ago``: the last k runs of the history and the run X % slower (the
step began k commits before the run), where the gate should fail and name the commit it began at.

Prints Markdown; about 3 minutes on one core of the 2-core VM.
"""

from __future__ import annotations

import argparse

import numpy as np

from quantbench.gate import verdicts as R
from quantbench.gate.lookback import LOOKBACK, judge
from quantbench.gate.policy import DEFAULT_RULES

METRIC = "latency_p50_ms"
RULE = next(rule for rule in DEFAULT_RULES if rule.metrics == (METRIC,))
DF = 4
SPELL_P, SPELL = 0.05, (0.10, 0.30)
NOISES = (("measured", 0.034, "median cell"), ("measured", 0.043, "noisiest ordinary cell (PyTorch fp32)"),
          ("measured", 0.103, "PyTorch dynamic int8"), ("stress", 0.034, "Gaussian + slow spells"),
          ("gaussian", 0.034, "median cell, no heavy tail"))


def noise(rng: np.random.Generator, n: int, model: str, sigma: float) -> np.ndarray:
    if model == "measured":
        return sigma * rng.standard_t(DF, n) / np.sqrt(DF / (DF - 2))
    if model == "gaussian":
        return rng.normal(0, sigma, n)
    spells = rng.random(n) < SPELL_P
    return rng.normal(0, sigma, n) + np.where(spells, np.log1p(rng.uniform(*SPELL, n)), 0.0)


def case(seed: int, *, model: str, sigma: float, slower: float = 0.0, step_ago: int | None = None):
    """(judgement, the commit the step began at or None) for one synthetic history and run."""
    rng = np.random.default_rng(seed)
    effect = np.zeros(LOOKBACK + 1)
    began = None
    if step_ago is not None:
        began = LOOKBACK - step_ago
        effect[began:] = np.log1p(slower)
    else:
        effect[-1] = np.log1p(slower)
    values = 100 * np.exp(effect + noise(rng, LOOKBACK + 1, model, sigma))
    commits = [f"c{i}" for i in range(LOOKBACK + 1)]
    found = judge(float(values[-1]), values[:-1].tolist(), commits[:-1], commits[-1], metric=METRIC, rule=RULE)
    return found, None if began is None else commits[began]


def rates(seeds: range, **kw) -> dict[str, float]:
    fails = placed = near = noise_rows = 0
    for seed in seeds:
        found, began = case(seed, **kw)
        fails += found.verdict == R.REGRESSION
        noise_rows += found.verdict == R.NOISE
        if began is not None and found.verdict == R.REGRESSION and found.step is not None:
            placed += found.step.commit == began
            near += abs(int(found.step.commit[1:]) - int(began[1:])) <= 1
    n = len(seeds)
    return {"fail": fails / n, "noise": noise_rows / n, "placed": placed / n, "near": near / n}


def pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="histories per table cell (default 1000)")
    args = parser.parse_args(argv)
    seeds = range(40_000, 40_000 + args.cases)
    print(f"#### The run alone ({args.cases} histories per cell, seeds {seeds.start}-{seeds.stop - 1}; "
          f"lookback {LOOKBACK}, threshold {RULE.threshold * 100:g} %)\n")
    header = ["noise", "sd a run", "same distribution: fails", "same: within noise", "+15 %: fails", "+20 %: fails",
              "+40 %: fails"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for model, sigma, what in NOISES:
        kw = dict(model=model, sigma=sigma)
        same = rates(seeds, **kw)
        row = [f"{model} ({what})", f"{100 * sigma:.1f} %", pct(same["fail"]), pct(same["noise"])]
        row += [pct(rates(seeds, slower=x, **kw)["fail"]) for x in (0.15, 0.20, 0.40)]
        print("| " + " | ".join(row) + " |")
    print(f"\n#### A step some runs before the gated one (+40 %; {args.cases} histories per cell)\n")
    header = ["noise", "sd a run", "began", "fails", "fails naming the commit it began at", "... at it ±1"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for model, sigma, what in NOISES:
        for ago in (2, 3, 6):
            found = rates(seeds, model=model, sigma=sigma, slower=0.40, step_ago=ago)
            print("| " + " | ".join([f"{model} ({what})", f"{100 * sigma:.1f} %", f"{ago} commits before",
                                     pct(found["fail"]), pct(found["placed"]), pct(found["near"])]) + " |")


if __name__ == "__main__":
    main()
