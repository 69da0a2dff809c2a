"""A finished cell's efficiency and cost figures, from its record and this machine's limits.

A share of a peak above 1 means the count or the peak is wrong. A peak measured while the
machine was busy is one way to get there, so the limits are measured again once (see
:mod:`.limits`, which keeps the highest peak seen); a share still above 1 is recorded as an
error, never as a figure.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from quantbench.efficiency.cell import EfficiencyError, cell_efficiency
from quantbench.efficiency.cost import cost_figures

log = logging.getLogger(__name__)


def record_figures(cell, extra_info: dict[str, Any], *, config: dict[str, Any], limits: dict[str, Any] | None,
                   price_per_hour: float | None, remeasure: Callable[[], dict[str, Any] | None] | None = None
                   ) -> dict[str, Any]:
    """Flat figures to merge into ``cell``'s extra_info; ``limits`` None: cost figures only."""
    out = cost_figures(extra_info, price_per_hour)
    if limits is None:
        return out

    def figures(current: dict[str, Any]) -> dict[str, Any]:
        return cell_efficiency(config=config, task=cell.task, params=cell.params(), extra_info=extra_info,
                               limits=current)

    try:
        return {**out, **figures(limits)}
    except EfficiencyError as exc:
        if remeasure is not None:
            log.warning("quantbench: %s; measuring this machine's limits again", exc)
            try:
                return {**out, **figures(remeasure()), "limits_remeasured": True}
            except EfficiencyError as again:
                exc = again
        log.warning("quantbench: %s", exc)
        return {**out, "efficiency_error": str(exc)}
