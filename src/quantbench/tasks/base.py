"""What every task provides: its model class and architecture check, its cells' measurement, its quality.

The architecture check lives here, so a checkpoint that does not fit its task fails in one
line instead of being silently re-headed. A task names the modules that hold its timed cell
and its quality scorer (``"module:attr"``), imported when a bench module first asks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantbench.errors import QuantbenchError


class ArchitectureMismatch(QuantbenchError):
    """A checkpoint whose architecture does not fit the suite's task."""


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str  # transformers Auto class, e.g. "AutoModelForCausalLM"
    ort_class: str  # optimum.onnxruntime class, e.g. "ORTModelForCausalLM"
    architecture_suffixes: tuple[str, ...]  # config.architectures entries that fit: "ForCausalLM"
    pipeline_tag: str
    cell_runner: str  # "module:attr": measure(benchmark, run, pool, cell) -> extra_info of a timed cell
    quality_class: str  # "module:attr": the class that scores a variant's quality (one per run)

    def measure(self, benchmark, run, pool, cell) -> dict[str, Any]:
        """Time one cell of this task through pytest-benchmark; returns its extra_info."""
        return _load(self.cell_runner)(benchmark, run, pool, cell)

    def quality(self, run, pool):
        """This task's quality scorer for the run (it keeps predictions and fp32 references)."""
        return _load(self.quality_class)(run, pool)

    def model_class(self):
        import transformers

        return getattr(transformers, self.auto_class)

    def ort_model_class(self):
        import optimum.onnxruntime

        return getattr(optimum.onnxruntime, self.ort_class)

    def check_architecture(self, config, *, model: str, path: Path | str) -> None:
        """Refuse a checkpoint whose saved head is of another task (named in one line)."""
        self.check_architectures(list(getattr(config, "architectures", None) or []), model=model, path=path)

    def check_architectures(self, architectures: list[str], *, model: str, path: Path | str) -> None:
        if not architectures:
            return  # a config without a head name (a bare encoder): the Auto class decides
        if not any(a.endswith(self.architecture_suffixes) for a in architectures):
            from quantbench import tasks

            fitting = [name for name in tasks.names()
                       if any(a.endswith(tasks.get(name).architecture_suffixes) for a in architectures)]
            if fitting:
                hint = f"it fits task {', '.join(map(repr, fitting))}: set the model's task in the suite"
            else:
                # A bare encoder (BertModel) has no head any task could score: no task setting helps.
                hint = ("no task fits a checkpoint without a task head: fine-tune it with a classification head "
                        "(AutoModelForSequenceClassification) or use a checkpoint that has one")
            raise ArchitectureMismatch(
                f"model {model!r}: checkpoint {path} is a {', '.join(architectures)}, which does not fit task "
                f"{self.name!r} (it needs a *{'/*'.join(self.architecture_suffixes)} checkpoint); {hint}")


def _load(target: str):
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)

