"""How quality scoring groups texts into forward passes, so a figure belongs to the variant.

A quantized model's output for one text must not depend on which other texts share its batch.
It does for methods that take an activation range over the whole batch (torch.ao and ONNX
Runtime dynamic int8: one scale per tensor, padded positions included). So:

* ``alone`` — each text in its own forward pass, as it would be served alone. The default for
  methods the registry marks ``batch_sensitive``.
* ``length-sorted`` — texts sorted by token length, in passes of the batch size, each padded to
  its longest (little padding; masked). The default for every other method: their activations
  are not quantized per tensor, so padding and neighbours cannot reach a text's output, and
  tests/unit/quality/test_quality_batching.py shows fp32, bf16, weight-only and per-token int8 give the
  same figure this way as one text at a time (while per-tensor dynamic int8 does not).
* ``exact-length`` — only texts of exactly the same token length share a pass (no padding at
  all). Provably invariant for any method; slower, since tweets have many lengths.
* ``served`` — consecutive texts in the given order, padded to the longest, as a server would
  batch them. Used only to *measure* batch sensitivity (``<figure>_at_bs<N>``), never as the figure.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from quantbench.cells import Cell, expand
from quantbench.registry import recipe
from quantbench.suite import Suite

ALONE, LENGTH_SORTED, EXACT_LENGTH, SERVED = "alone", "length-sorted", "exact-length", "served"
MODES = (ALONE, LENGTH_SORTED, EXACT_LENGTH, SERVED)


def batch_sensitivity_reason(cell: Cell) -> str:
    """Why ``cell``'s method can change a text's output with its batch ("" when it cannot)."""
    found = recipe(cell.quant, cell.backend)
    return found.batch_sensitive if found else ""


def sensitive_groups(suite: Suite) -> frozenset[tuple[str, str, str]]:
    """(model, backend, device) of every batch-sensitive variant the suite plans (one expansion;
    a scorer computes it once per run and passes it to :func:`measures_sensitivity`)."""
    return frozenset((p.cell.model, p.cell.backend, p.cell.device) for p in expand(suite, per_variant=True)
                     if batch_sensitivity_reason(p.cell))


def measures_sensitivity(cell: Cell, suite: Suite, groups: frozenset | None = None) -> bool:
    """Whether ``cell``'s variant is also scored in served batches (suite ``quality.batch_sensitivity``):
    "all"; "off"; "sensitive" (the default) for batch-sensitive methods, and for fp32 on a backend and
    device where the suite has one: the control that shows what batching alone does there. An fp32
    control beside no batch-sensitive variant would cost two passes and compare with nothing.
    ``groups``: :func:`sensitive_groups` of the suite, when the caller has it."""
    setting = suite.quality.batch_sensitivity
    if setting != "sensitive":
        return setting == "all"
    if batch_sensitivity_reason(cell):
        return True
    if cell.quant != "fp32":
        return False
    return (cell.model, cell.backend, cell.device) in (groups if groups is not None else sensitive_groups(suite))


def default_mode(cell: Cell) -> str:
    return ALONE if batch_sensitivity_reason(cell) else LENGTH_SORTED


def describe(cell: Cell, mode: str, batch_size: int) -> str:
    """The ``quality_scoring`` a record carries: how its texts met the model."""
    if mode == ALONE:
        return f"each text alone (batch 1): {batch_sensitivity_reason(cell) or 'requested'}"
    if mode == LENGTH_SORTED:
        return (f"length-sorted batches of up to {batch_size} texts, padded and masked: this method's activations "
                "are not quantized per tensor, so a text's output does not depend on its neighbours")
    if mode == EXACT_LENGTH:
        return f"exact-length buckets of up to {batch_size} texts, no padding"
    return f"batches of {batch_size} consecutive texts, padded to the longest, as served"


def batches(lengths: list[int], mode: str, batch_size: int) -> list[np.ndarray]:
    """Index arrays, one per forward pass, covering every text once."""
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; known: {', '.join(MODES)}")
    n = len(lengths)
    if mode == ALONE:
        return [np.array([i]) for i in range(n)]
    if mode == SERVED:
        return [np.arange(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if mode == LENGTH_SORTED:
        order = np.argsort(lengths, kind="stable")
        return [order[start:start + batch_size] for start in range(0, n, batch_size)]
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, length in enumerate(lengths):
        by_length[length].append(i)
    out = []
    for length in sorted(by_length):
        group = by_length[length]
        out.extend(np.array(group[start:start + batch_size]) for start in range(0, len(group), batch_size))
    return out
