"""One variant of a suite, built the way the sweep builds it, for lm-eval to score.

``open_variant(suite=..., quant=..., backend=...)`` resolves the suite, finds the variant among
the suite's own cells (the same expansion the sweep parametrizes, so an excluded or impossible
pair is an error, never a look-alike), and builds it through the run context and the variant
pool: the same checkpoint, build settings, registry recipe and cache as ``pytest bench/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from quantbench.cells import Cell
from quantbench.errors import QuantbenchError


@dataclass
class OpenedVariant:
    """A built variant with what scoring it needs: its cell, tokenizer, checkpoint folder and config."""

    cell: Cell
    variant: Any
    tokenizer: Any
    checkpoint: Any  # the checkpoint folder (pathlib.Path): its config and generation config
    baseline_note: str | None = None
    release: Callable[[], None] = field(default=lambda: None, repr=False)


def variant_cell(suite, *, model: str | None, quant: str, backend: str, device: str) -> Cell:
    """The suite's per-variant cell for (model, quant, backend, device); a one-line error names
    the variants the suite has when the asked one is not among them."""
    from quantbench import cells, task_kinds as tasks

    generation = [m.name for m in suite.models if m.task == tasks.GENERATION]
    if not generation:
        raise QuantbenchError(f"suite {suite.name!r} has no {tasks.GENERATION} model; lm-eval scores causal LMs")
    model = model or generation[0]
    if model not in generation:
        raise QuantbenchError(f"model {model!r} is not a {tasks.GENERATION} model of suite {suite.name!r}; "
                              f"it has: {', '.join(generation)}")
    planned = [p for p in cells.expand(suite, per_variant=True, task=tasks.GENERATION) if p.cell.model == model]
    for p in planned:
        if (p.cell.quant, p.cell.backend, p.cell.device) == (quant, backend, device):
            if p.skip_reason:
                raise QuantbenchError(f"{p.cell.variant_id} cannot run here: {p.skip_reason}")
            return p.cell
    known = ", ".join(f"{p.cell.quant}/{p.cell.backend}/{p.cell.device}" for p in planned)
    raise QuantbenchError(f"suite {suite.name!r} has no variant quant={quant} backend={backend} device={device} "
                          f"for model {model!r}; its variants (quant/backend/device): {known}")


def open_variant(*, suite: str, model: str | None = None, quant: str = "fp32", backend: str = "pytorch",
                 device: str = "cpu") -> OpenedVariant:
    """Build ``suite``'s variant as the sweep does (RunContext -> VariantPool -> registry recipe)."""
    from quantbench.runner.pool import VariantPool
    from quantbench.runner.context import RunContext
    from quantbench.suite import load_suite

    loaded = load_suite(suite)
    cell = variant_cell(loaded, model=model, quant=quant, backend=backend, device=device)
    run = RunContext(loaded)
    pool = VariantPool()
    resources = run.for_cell(cell, timed=False)
    built = pool.get(cell, resources.source, resources.settings)
    return OpenedVariant(cell=cell, variant=built.variant, tokenizer=resources.tokenizer,
                         checkpoint=resources.source.path, baseline_note=resources.source.baseline_note,
                         release=pool.release)
