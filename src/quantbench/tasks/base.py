"""What every task spec provides: its kind (name, Auto class, the architectures that fit), a
cell's inputs and the timed call. Subclasses implement ``cell_inputs`` and ``run_once``."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from quantbench import task_kinds


@dataclass(frozen=True)
class Task(abc.ABC):
    name: str

    @property
    def kind(self) -> task_kinds.TaskKind:
        return task_kinds.kind(self.name)

    @abc.abstractmethod
    def cell_inputs(self, splits, tokenizer, cell) -> dict[str, Any]:
        """Tokenizer output (numpy) for ``cell``'s shape: what ``variant.prepare`` takes, outside the timed region."""

    @abc.abstractmethod
    def run_once(self, variant, inputs: Any, cell, *args) -> Any:
        """The timed call on prepared inputs (it synchronizes the device before returning)."""
