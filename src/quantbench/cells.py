"""A suite becomes cells: the cartesian product, minus what cannot exist or was excluded.

* A (method, backend) pair with no recipe, a device the recipe never runs on, or a model the
  recipe cannot build from (llama.cpp needs a GGUF causal LM) is dropped (deselected): it is
  not a cell at all.
* A cell that could run but not on *this* machine (no CUDA, a missing optional dependency)
  stays, with a one-line ``skip_reason``; it shows as skipped.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from quantbench import registry, task_kinds
from quantbench.hardware import devices
from quantbench.errors import QuantbenchError
from quantbench.suite import Suite

# Order inside one model × device: fp32 first (other variants compare against it).
_QUANT_ORDER = ("fp32", "fp16", "bf16", "dynamic_int8", "static_int8", "int8wo", "int8dq", "bnb_int8", "nf4",
                "q8_0", "q6_k", "q5_k_m", "q5_0", "gguf", "q4_k_m", "q4_0", "iq4_nl")
FILTER_AXES = ("model", "quant", "backend", "device", "batch_size", "seq_len", "prompt_len", "new_tokens", "scenario")


@dataclass(frozen=True)
class Cell:
    model: str
    dataset: str
    quant: str
    backend: str
    device: str
    batch_size: int
    seq_len: int  # tokens per row: the sequence length, or for generation the prompt length
    per_variant: bool = False  # accuracy/fairness cells: one per variant, not per batch size
    task: str = task_kinds.CLASSIFICATION
    new_tokens: int = 0  # generation cells: tokens generated per row
    scenario: str = ""  # serving cells (test_serving): single_stream, offline or server; one per variant

    @property
    def is_generation(self) -> bool:
        return self.task == task_kinds.GENERATION

    @property
    def prompt_len(self) -> int:
        return self.seq_len

    @property
    def variant_key(self) -> tuple[str, str, str, str]:
        return (self.model, self.quant, self.backend, self.device)

    @property
    def variant_id(self) -> str:
        return f"{self.model}-{self.dataset}-{self.quant}-{self.backend}-{self.device}"

    @property
    def id(self) -> str:
        if self.scenario:
            return f"{self.variant_id}-{self.scenario}"
        if self.per_variant:
            return self.variant_id
        if self.is_generation:
            return f"{self.variant_id}-bs{self.batch_size}-p{self.seq_len}-n{self.new_tokens}"
        return f"{self.variant_id}-bs{self.batch_size}-seq{self.seq_len}"

    def params(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k in FILTER_AXES}
        if self.is_generation:
            values.pop("seq_len")
            values.update(prompt_len=self.seq_len, new_tokens=self.new_tokens, task=self.task)
            if self.per_variant:  # one per variant: the shapes are the quality settings, not axes
                for axis in ("batch_size", "prompt_len", "new_tokens"):
                    values.pop(axis)
        else:
            values.pop("new_tokens")
        if not self.scenario:
            values.pop("scenario")
        else:  # a serving cell runs every batch size as a setting of its batcher
            values.pop("batch_size", None)
        return values

    def axis(self, name: str) -> Any:
        """The value of a filter axis for this cell (None where the axis is not the cell's)."""
        return self.params().get(name)


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    skip_reason: str | None = None


def check_filters(suite: Suite, filters: dict[str, tuple]) -> None:
    """Options narrow a sweep: every value must be in the suite, and names must exist."""
    axes = {"model": tuple(m.name for m in suite.models), "quant": suite.quantization, "backend": suite.backends,
            "device": suite.devices, "batch_size": suite.batch_sizes, "seq_len": suite.seq_lens,
            "prompt_len": suite.prompt_lens, "new_tokens": suite.new_tokens,
            "scenario": suite.serving.scenarios}
    known = {"quant": registry.quant_methods(), "backend": registry.backends(), "device": registry.DEVICES}
    for axis, values in filters.items():
        for value in values:
            if axis in known and value not in known[axis]:
                raise QuantbenchError(f"--{axis.replace('_', '-')} {value}: unknown {axis}; known: "
                                      f"{', '.join(map(str, known[axis]))}")
            if value not in axes[axis]:
                raise QuantbenchError(f"--{axis.replace('_', '-')} {value}: not in suite {suite.name!r} "
                                      f"({', '.join(map(str, axes[axis]))})")


def _sort_key(cell: Cell, suite: Suite) -> tuple:
    model_index = [m.name for m in suite.models].index(cell.model)
    return (model_index, suite.devices.index(cell.device), suite.backends.index(cell.backend),
            _QUANT_ORDER.index(cell.quant) if cell.quant in _QUANT_ORDER else len(_QUANT_ORDER),
            cell.batch_size, cell.seq_len, cell.new_tokens)


def _shapes(suite: Suite, model, per_variant: bool) -> list[tuple[int, int, int]]:
    """(batch, tokens per row, new tokens) of the model's cells."""
    if per_variant:
        return [(suite.measure.eval_batch_size, model.max_seq_len, 0)]
    if model.is_generation:
        return list(itertools.product(suite.batch_sizes, suite.prompt_lens, suite.new_tokens))
    return [(b, s, 0) for b, s in itertools.product(suite.batch_sizes, suite.seq_lens)]


#: Shape axes: a per-variant cell (accuracy, fairness) is measured once, whatever shapes are asked for.
_SHAPE_AXES = ("batch_size", "seq_len", "prompt_len", "new_tokens")


def _filtered_out(cell: Cell, filters: dict[str, tuple]) -> bool:
    """A filter on an axis the cell does not have (seq_len of a generation cell) does not drop it."""
    params = cell.params()
    return any(axis in params and params[axis] not in values for axis, values in filters.items()
               if not (cell.per_variant and axis in _SHAPE_AXES))


def expand(suite: Suite, filters: dict[str, tuple] | None = None, *, per_variant: bool = False,
           task: str | None = None, serving: bool = False) -> list[PlannedCell]:
    """The suite's cells in run order: grouped by variant, fp32 first, batch sizes ascending.

    ``task`` keeps only the models of that task (a benchmark function serves one task).
    ``serving`` gives one cell per variant and serving scenario (none when the suite has no
    ``serving`` section); its batch sizes are settings inside the cell, not cells.
    """
    filters = {k: v for k, v in (filters or {}).items() if v}
    check_filters(suite, filters)
    planned = []
    for model, quant, backend, device in itertools.product(suite.models, suite.quantization, suite.backends,
                                                           suite.devices):
        if task and model.task != task:
            continue
        recipe = registry.recipe(quant, backend)
        if recipe is None or device not in recipe.devices or not recipe.fits(task=model.task,
                                                                              has_gguf=model.has_gguf):
            continue
        reason = devices.cell_unavailable(recipe, device, suite.method_options.get(quant, {}))
        shapes = [(0, model.max_seq_len, 0, s) for s in suite.serving.scenarios] if serving else \
            [(*shape, "") for shape in _shapes(suite, model, per_variant)]
        for batch_size, seq_len, new_tokens, scenario in shapes:
            cell = Cell(model.name, suite.dataset.name, quant, backend, device, batch_size, seq_len,
                        per_variant or serving, model.task, new_tokens, scenario)
            rule_view = {**cell.params(), "model": cell.model, "task": cell.task}
            if any(all(rule_view.get(k) == v for k, v in rule.items()) for rule in suite.exclude):
                continue
            if _filtered_out(cell, filters):
                continue
            planned.append(PlannedCell(cell, reason))
    order = {s: i for i, s in enumerate(suite.serving.scenarios)}
    planned.sort(key=lambda p: (*_sort_key(p.cell, suite), order.get(p.cell.scenario, -1)))
    return planned
