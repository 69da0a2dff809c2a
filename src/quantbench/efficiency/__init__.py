"""Efficiency against the machine's own limits: measured peaks, counted FLOPs and bytes, cost.

* :mod:`.limits` measures this machine's peak matmul throughput (fp32, bf16, int8) and memory
  bandwidth once, with the libraries the variants use, and caches them;
* :mod:`.flops` counts the FLOPs and bytes of a timed call from the model's config;
* :mod:`.cell` turns a record's timings into achieved throughput, its share of the matching
  peak, and arithmetic intensity (a share above 1 is an error, never a figure);
* :mod:`.cost` prices throughput: cost per million inferences or output tokens.
"""

from quantbench.efficiency.cell import EfficiencyError, cell_efficiency
from quantbench.efficiency.cost import cost_figures
from quantbench.efficiency.limits import machine_limits

__all__ = ["EfficiencyError", "cell_efficiency", "cost_figures", "machine_limits"]
