"""Task specs: what a cell of each kind of model feeds it and times.

A task says how a cell's inputs are made from the data (already tokenized, ready for the timed
region) and what the timed call is. The Hugging Face facts about a task (its Auto class, which
architectures fit) sit below, in :mod:`quantbench.task_kinds`; what a cell *does* with the spec
(warm up, time rounds, record) sits above, in :mod:`quantbench.runner`; how its quality is
scored, in :mod:`quantbench.quality`. Specs are registered lazily (``"module:attr"``), so adding a
task is one module plus one line here and one in ``task_kinds``.
"""

from __future__ import annotations

import importlib

from quantbench.task_kinds import ALIASES, CLASSIFICATION, GENERATION, canonical, names

__all__ = ["ALIASES", "CLASSIFICATION", "GENERATION", "canonical", "get", "names"]

_TASKS = {
    CLASSIFICATION: "quantbench.tasks.classification.task:TASK",
    GENERATION: "quantbench.tasks.generation.task:TASK",
}


def get(name: str):
    """The task spec for ``name`` (imported on first use)."""
    module_name, attr = _TASKS[canonical(name)].split(":")
    return getattr(importlib.import_module(module_name), attr)
