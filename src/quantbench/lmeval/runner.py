"""Run lm-eval tasks on a quantbench model with lm-eval's own evaluator (``simple_evaluate``).

The task manager indexes the include paths (the shipped task folder, the suite's folders) and,
only when a task is not found there, lm-eval's own task tree too: indexing that tree takes about
6 s on 2 cores, and the sweep runs every variant, so one manager is kept per set of folders.

A corpus-level metric (``mcc``, ``f1``) gets its stderr from lm-eval's bootstrap. lm-eval's
default is 100,000 resamples over a process pool forked from this process, which holds the
model; the sweep asks for quantbench's usual 1,000 (quality/uncertainty.py), in this process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Any

from quantbench.errors import QuantbenchError
from quantbench.quality.uncertainty import BOOTSTRAP_SAMPLES


@functools.lru_cache(maxsize=4)
def task_manager(include_paths: tuple[str, ...], tasks: tuple[str, ...]):
    """An lm-eval TaskManager that knows ``tasks``: the include paths alone when they hold them all."""
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=list(include_paths), include_defaults=False) if include_paths else None
    if local is not None and set(tasks) <= set(local.all_tasks):
        return local
    manager = TaskManager(include_path=list(include_paths) or None)
    unknown = sorted(set(tasks) - set(manager.all_tasks))
    if unknown:
        raise QuantbenchError(f"lm-eval knows no task {', '.join(map(repr, unknown))} (searched lm-eval's tasks and "
                              f"{', '.join(include_paths) or 'no include_path'})")
    return manager


def run_tasks(lm, *, tasks: tuple[str, ...], include_paths: tuple[str, ...], limit: int | float | None = None,
              num_fewshot: int | None = None) -> tuple[dict[str, Any], float]:
    """lm-eval's results for ``lm`` on ``tasks`` (samples included), and the seconds they took."""
    from lm_eval import simple_evaluate

    manager = task_manager(tuple(include_paths), tuple(tasks))
    start = time.perf_counter()
    with _no_bootstrap_pool():
        results = simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                  num_fewshot=num_fewshot, batch_size=lm.batch_size, device=lm.cell.device,
                                  log_samples=True, bootstrap_iters=BOOTSTRAP_SAMPLES)
    return results, time.perf_counter() - start


@contextlib.contextmanager
def _no_bootstrap_pool():
    """lm-eval's bootstrap runs in this process while set (its ``DISABLE_MULTIPROC``), not in forks of it."""
    before = os.environ.get("DISABLE_MULTIPROC")
    os.environ["DISABLE_MULTIPROC"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DISABLE_MULTIPROC", None)
        else:
            os.environ["DISABLE_MULTIPROC"] = before
