"""A finished cell's efficiency and cost figures, from its record and this machine's limits.

The cell's kernel family is read from its record (efficiency/cell.py); if the run's limits lack
that family (a builder recorded another kernel than its recipe names), it is measured now, after
the cell's rounds. A share of a peak above 1 means the count or the peak is wrong. A peak measured
while the machine was busy is one way to get there, so that one family is timed again, once per
run (limits.py keeps the highest peak seen); a share still above 1 is recorded as an error,
never as a figure.
"""

from __future__ import annotations

import logging
from typing import Any

from quantbench import registry
from quantbench.efficiency import limits as machine
from quantbench.efficiency.cell import EfficiencyError, cell_efficiency, compute_kernel
from quantbench.efficiency.cost import cost_figures

log = logging.getLogger(__name__)


def record_figures(cell, extra_info: dict[str, Any], *, config: dict[str, Any], limits: dict[str, Any] | None,
                   price_per_hour: float | None, threads: int | None = None) -> dict[str, Any]:
    """Flat figures to merge into ``cell``'s extra_info; ``limits`` None: cost figures only."""
    out = cost_figures(extra_info, price_per_hour)
    if limits is None:
        return out
    kernel = compute_kernel(cell.quant, cell.backend, extra_info.get("quant_config"))
    if registry.kernel(kernel).limit not in limits.get("limits", {}):
        limits = machine.ensure_kernel(kernel, device=cell.device, threads=threads)

    def figures(current: dict[str, Any]) -> dict[str, Any]:
        return cell_efficiency(config=config, task=cell.task, params=cell.params(), extra_info=extra_info,
                               limits=current)

    try:
        return {**out, **figures(limits)}
    except EfficiencyError as exc:
        name = kernel if exc.kernel else None
        again = machine.remeasure_kernel(name, device=cell.device, threads=threads) if name else None
        if again is not None:
            log.warning("quantbench: %s; timing the %s kernel again", exc, name)
            try:
                return {**out, **figures(again), "limits_remeasured": name}
            except EfficiencyError as still:
                exc = still
        log.warning("quantbench: %s", exc)
        return {**out, "efficiency_error": str(exc)}
