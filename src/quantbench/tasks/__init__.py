"""Tasks: what kind of model a suite benchmarks, and what a cell of it does.

A task owns four things: how its model class is loaded (and which architectures fit), the
inputs of a cell, the timed call, and its quality metrics. Tasks are registered lazily, as
methods are (``"module:attr"``), so adding one is one module plus one line here.
"""

from __future__ import annotations

import importlib

from quantbench.errors import UnknownNameError

CLASSIFICATION = "text-classification"
GENERATION = "text-generation"

_TASKS = {
    CLASSIFICATION: "quantbench.tasks.classification.task:TASK",
    GENERATION: "quantbench.tasks.generation.task:TASK",
}
#: Older suites said ``sequence-classification``: it still reads as text-classification.
ALIASES = {"sequence-classification": CLASSIFICATION}


def names() -> tuple[str, ...]:
    return tuple(_TASKS)


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in _TASKS:
        raise UnknownNameError(f"unknown task {name!r}; known: {', '.join(_TASKS)}")
    return name


def get(name: str):
    """The task object for ``name`` (imported on first use)."""
    module_name, attr = _TASKS[canonical(name)].split(":")
    return getattr(importlib.import_module(module_name), attr)
