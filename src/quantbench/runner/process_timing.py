"""A classification cell's rounds in a fresh worker process (suite ``measure.processes``).

The worker comes from the same forkserver as the memory workers (measures/isolated.py): a fresh
heap, its own thread pools and its own allocation of the variant's weights, which is what made
whole processes differ on the 2-core VMs. It builds the variant from the cache, prepares the
inputs the parent tokenized, builds and warms its own drift reference, warms the variant up and
times rounds under the suite's stop rule, the reference timed before each round as in the
harness's process (measures/drift.py). It sends back the seconds; the parent adds them to the
cell's pytest-benchmark stats and records the process (measures/processes.py).
"""

from __future__ import annotations

import os
import time
from typing import Any

from quantbench import cache
from quantbench.cells import Cell
from quantbench.measures.processes import ProcessRounds

#: Test hook: a timing worker that finds this variable set to its variant id sleeps this long first
#: per round (``variant_id=seconds``), so a test can see a slow process land in the figures.
SLOW_ENV = "QUANTBENCH_TEST_SLOW_TIMING_WORKER"


def _slowdown(variant_id: str) -> float:
    spec = os.environ.get(SLOW_ENV, "")
    name, _, seconds = spec.partition("=")
    return float(seconds) if name == variant_id and seconds else 0.0


def _time(builder_name: tuple[str, str], source, settings, measure, encoding: dict, cell: Cell,
          verified: dict[str, tuple]) -> dict[str, Any]:
    import gc

    gc.freeze()  # what the forkserver imported is not this cell's garbage (see measures/isolated.py)
    import torch

    from quantbench import registry
    from quantbench.measures import latency
    from quantbench.measures.drift import RoundPairing, make_reference
    from quantbench.measures.rounds import StopRule
    from quantbench.models import import_model_code
    from quantbench.tasks.classification.task import TASK

    if settings.threads:
        torch.set_num_threads(settings.threads)
    cache.trust(verified)  # the parent hashed these artifacts moments ago
    import_model_code(source, settings.task)
    variant = registry.recipe(*builder_name).load()(source, settings)
    pairing = (RoundPairing(make_reference(cell.backend, cell.device, settings.threads), measure.reference_every_s)
               if measure.drift_reference else None)
    extra_s = _slowdown(cell.variant_id)
    with torch.inference_mode():
        inputs = variant.prepare(encoding)

        def call():
            if extra_s:
                time.sleep(extra_s)
            return TASK.run_once(variant, inputs, cell)

        latency.warm_up(call, measure.warmup_rounds)
        rule = StopRule.for_rounds(measure)
        seconds: list[float] = []
        started = time.perf_counter()
        while True:
            if pairing is not None:
                pairing()
            begun = time.perf_counter()
            call()
            seconds.append(time.perf_counter() - begun)
            stop = rule.stop(rounds=len(seconds), elapsed_s=time.perf_counter() - started, last_s=seconds[-1],
                             series=seconds)
            if stop:
                break
    return {"seconds": seconds, "reference_s": pairing.per_round if pairing else None, "pid": os.getpid(),
            "stop": stop}


def time_in_worker(cell: Cell, *, source, settings, measure, encoding: dict, preload: tuple[str, ...] = (),
                   timeout_s: float = 900.0) -> ProcessRounds:
    """One more process's rounds for ``cell`` (its variant built afresh in a worker)."""
    from quantbench.measures.isolated import run_in_worker

    payload = run_in_worker(_time, ((cell.quant, cell.backend), source, settings, measure, encoding, cell,
                                      cache.verified_entries()),
                            what=f"timing worker for {cell.id}", timeout_s=timeout_s, preload=preload)
    reference = payload["reference_s"]
    return ProcessRounds(seconds=tuple(payload["seconds"]), reference_s=tuple(reference) if reference else None,
                         origin="worker", pid=int(payload["pid"]), stop=str(payload["stop"]))
