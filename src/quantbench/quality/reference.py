"""Which fp32 cell a variant's quality is measured against.

Kept apart from the scorer, whose metrics import evaluate, datasets and fairlearn (several seconds):
the bench modules need only this at import, so a bad suite or option fails before any of that loads.
"""

from __future__ import annotations

import dataclasses

from quantbench.cells import Cell
from quantbench.registry import quality_reference


def reference_cell(cell: Cell) -> Cell:
    """The fp32 cell ``cell``'s quality is measured against."""
    return dataclasses.replace(cell, quant="fp32", backend=quality_reference(cell.backend))


def is_reference(cell: Cell) -> bool:
    """Whether ``cell``'s variant is its own quality reference (its deltas are zero by definition)."""
    return reference_cell(cell).variant_key == cell.variant_key
