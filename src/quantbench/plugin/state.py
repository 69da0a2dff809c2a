"""What the plugin keeps for one pytest session: the suite, the plan, each cell's outcome, the run context."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from quantbench.errors import QuantbenchError
from quantbench.plugin.options import LIST_OPTIONS, option, parse_list
from quantbench.suite import Suite, load_suite

_STATE = pytest.StashKey["QuantbenchState"]()


@dataclass
class QuantbenchState:
    config: pytest.Config
    _suite: Suite | None = None
    _run: Any = None  # quantbench.runner.context.RunContext, made on first use
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> record
    collection_error: str | None = None
    output_path: Any = None  # the run file pytest-benchmark wrote
    journal: Any = None  # quantbench.plugin.journal.Journal, when journaling
    resumed: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell key -> journal record
    latency_shapes: dict[tuple, list] = field(default_factory=dict)  # variant key -> [(batch, seq, new)] to run
    models_in_run: set = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)

    @property
    def suite(self) -> Suite:
        if self._suite is None:
            suite = load_suite(option(self.config, "suite") or "default")
            import dataclasses

            threads = option(self.config, "threads")
            if threads:
                n = parse_list("threads", threads, int)[0]
                suite = dataclasses.replace(suite, measure=dataclasses.replace(suite.measure, threads=n))
            processes = option(self.config, "processes")
            if processes:
                n = parse_list("processes", processes, int)[0]
                if n < 1:
                    raise pytest.UsageError(f"--processes: must be a positive integer, got {n}")
                if suite.measure.end_to_end and n > 1:
                    raise pytest.UsageError(f"--processes {n}: the suite times end to end, which runs in the "
                                            "harness's process only")
                suite = dataclasses.replace(suite, measure=dataclasses.replace(suite.measure, processes=n,
                                                                               max_processes=n))
            price = option(self.config, "price_per_hour")
            if price:
                from quantbench.efficiency.cost import parse_price

                try:
                    suite = dataclasses.replace(suite, price_per_hour=parse_price(price, where="--price-per-hour"))
                except QuantbenchError as exc:
                    raise pytest.UsageError(str(exc)) from None
            self._suite = suite
        return self._suite

    def filters(self) -> dict[str, tuple]:
        return {name: parse_list(name, option(self.config, name), kind) for name, (kind, _) in LIST_OPTIONS.items()}

    @property
    def run(self):
        if self._run is None:
            from quantbench.runner.context import RunContext

            self.apply_threads()
            self._run = RunContext(self.suite, latency_shapes=self.latency_shapes)
        return self._run

    def apply_threads(self) -> None:
        if self.suite.measure.threads:
            import torch

            torch.set_num_threads(self.suite.measure.threads)


def state(config: pytest.Config) -> QuantbenchState:
    if _STATE not in config.stash:
        config.stash[_STATE] = QuantbenchState(config)
    return config.stash[_STATE]
