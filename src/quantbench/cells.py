"""A suite becomes cells: the cartesian product, minus what cannot exist or was excluded.

* A (method, backend) pair with no recipe, or a device the recipe never runs on, is dropped
  (deselected): it is not a cell at all.
* A cell that could run but not on *this* machine (no CUDA, a missing optional dependency)
  stays, with a one-line ``skip_reason``; it shows as skipped.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

from quantbench import devices, registry
from quantbench.errors import QuantbenchError
from quantbench.suite import Suite

# Order inside one model × device: fp32 first (other variants compare against it).
_QUANT_ORDER = ("fp32", "fp16", "bf16", "dynamic_int8", "static_int8", "bnb_int8", "nf4")
FILTER_AXES = ("model", "quant", "backend", "device", "batch_size", "seq_len")


@dataclass(frozen=True)
class Cell:
    model: str
    dataset: str
    quant: str
    backend: str
    device: str
    batch_size: int
    seq_len: int
    per_variant: bool = False  # accuracy/fairness cells: one per variant, not per batch size

    @property
    def variant_key(self) -> tuple[str, str, str, str]:
        return (self.model, self.quant, self.backend, self.device)

    @property
    def variant_id(self) -> str:
        return f"{self.model}-{self.dataset}-{self.quant}-{self.backend}-{self.device}"

    @property
    def id(self) -> str:
        return self.variant_id if self.per_variant else f"{self.variant_id}-bs{self.batch_size}-seq{self.seq_len}"

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in FILTER_AXES}


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    skip_reason: str | None = None


def _matches(cell: Cell, rule: dict[str, Any]) -> bool:
    return all(getattr(cell, key) == value for key, value in rule.items())


def check_filters(suite: Suite, filters: dict[str, tuple]) -> None:
    """Options narrow a sweep: every value must be in the suite, and names must exist."""
    axes = {"model": tuple(m.name for m in suite.models), "quant": suite.quantization, "backend": suite.backends,
            "device": suite.devices, "batch_size": suite.batch_sizes, "seq_len": suite.seq_lens}
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
            cell.batch_size, cell.seq_len)


def expand(suite: Suite, filters: dict[str, tuple] | None = None, *, per_variant: bool = False) -> list[PlannedCell]:
    """The suite's cells in run order: grouped by variant, fp32 first, batch sizes ascending."""
    filters = {k: v for k, v in (filters or {}).items() if v}
    check_filters(suite, filters)
    planned = []
    for model, quant, backend, device in itertools.product(suite.models, suite.quantization, suite.backends,
                                                           suite.devices):
        recipe = registry.recipe(quant, backend)
        if recipe is None or device not in recipe.devices:
            continue
        shapes = [(suite.measure.eval_batch_size, model.max_seq_len)] if per_variant else \
            itertools.product(suite.batch_sizes, suite.seq_lens)
        reason = devices.cell_unavailable(recipe, device)
        for batch_size, seq_len in shapes:
            cell = Cell(model.name, suite.dataset.name, quant, backend, device, batch_size, seq_len, per_variant)
            if any(_matches(cell, rule) for rule in suite.exclude):
                continue
            if any(getattr(cell, axis) not in values for axis, values in filters.items()
                   if not (per_variant and axis in ("batch_size", "seq_len"))):
                continue
            planned.append(PlannedCell(cell, reason))
    planned.sort(key=lambda p: _sort_key(p.cell, suite))
    return planned
