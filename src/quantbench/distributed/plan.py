"""The sweep's plan: the cells ``pytest bench/`` would collect, grouped into units of one variant.

Planning runs pytest's own collection in this process (``--collect-only`` with the same options
the nodes get), so a sweep holds exactly the cells a local run would: the suite, ``--quant``,
``-k`` and every other filter apply the same way. A cell the driver itself could not run (a
CUDA cell on a CPU-only driver) is still planned: its node decides.

A unit is every cell of one variant (model × method × backend × device): each variant is then
built once per node, and its accuracy and fairness cells run beside its latency cells.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from quantbench.errors import QuantbenchError


@dataclass(frozen=True)
class PlannedCell:
    key: str  # ``test_latency[cell id]``: what --cells-from lists and the journal keys on
    test: str
    cell_id: str
    params: dict[str, Any] = field(hash=False, compare=False)


@dataclass(frozen=True)
class Unit:
    id: str  # the variant id, e.g. ``minilm-tweets-fp32-pytorch-cpu``
    device: str
    cells: tuple[PlannedCell, ...]

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.cells]


@dataclass(frozen=True)
class Plan:
    units: tuple[Unit, ...]
    threads: int | None  # the suite's (or --threads') thread count; None: each node's cores
    suite_name: str
    # device -> the kernel families its units run (efficiency limits); empty with efficiency off
    kernels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return sum(len(u.cells) for u in self.units)


class _Collector:
    """A pytest plugin that keeps the collected cells, in run order, after every deselection."""

    def __init__(self) -> None:
        self.cells: list[tuple[tuple, PlannedCell, str]] = []
        self.threads: int | None = None
        self.suite_name = ""
        self.kernels: dict[str, set[str]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from quantbench.plugin.collection import cell_of
        from quantbench.plugin.journal import cell_key
        from quantbench.plugin.state import state

        for item in session.items:
            cell = cell_of(item)
            if cell is None:
                continue
            planned = PlannedCell(cell_key(item.originalname, cell.id), item.originalname, cell.id, cell.params())
            self.cells.append((cell.variant_key, planned, cell.variant_id))
        st = state(session.config)
        if self.cells:
            self.threads = st.suite.measure.threads
            self.suite_name = st.suite.name
            if st.suite.measure.efficiency:
                self.kernels = kernels_of(st.suite, [key for key, _cell, _id in self.cells])


def kernels_of(suite, variant_keys: list[tuple]) -> dict[str, set[str]]:
    """device -> the kernel families the variants run (their recipes, with the suite's method options)."""
    from quantbench import registry

    out: dict[str, set[str]] = {}
    for _model, quant, backend, device in variant_keys:
        recipe = registry.recipe(quant, backend)
        if recipe is not None:
            out.setdefault(device, {"fp32"}).add(recipe.compute_for(suite.method_options.get(quant, {})))
    return out


#: The plugin's output variables: the driver writes the sweep's outputs itself, so collection must not
#: open (and truncate) a journal or plan reports of its own.
OUTPUT_VARS = ("QUANTBENCH_REPORT_DIR", "QUANTBENCH_RESULTS_JSONL", "QUANTBENCH_GATE_BASELINE",
               "QUANTBENCH_GATE_POLICY")


@contextlib.contextmanager
def _without(names: tuple[str, ...]):
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def plan_sweep(pytest_args: list[str]) -> Plan:
    """Collect ``bench/`` with ``pytest_args`` (``--suite``, filters, ``-k``) and group the cells by variant."""
    if os.environ.get("QUANTBENCH_SHARD"):
        raise QuantbenchError(f"QUANTBENCH_SHARD={os.environ['QUANTBENCH_SHARD']} is set: a sweep spreads every "
                              "cell over the cluster; unset it")
    collector = _Collector()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), _without(OUTPUT_VARS):
        code = pytest.main(["bench", "--collect-only", "-qq", "-p", "no:cacheprovider", *pytest_args],
                           plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise QuantbenchError(f"planning failed (pytest --collect-only exit {int(code)}): {_reason(out.getvalue())}")
    if not collector.cells:
        raise QuantbenchError("the sweep has no cells: the suite and options select nothing")
    units: dict[tuple, list[PlannedCell]] = {}
    names: dict[tuple, str] = {}
    for variant_key, cell, variant_id in collector.cells:
        units.setdefault(variant_key, []).append(cell)
        names[variant_key] = variant_id
    return Plan(tuple(Unit(names[k], k[3], tuple(cells)) for k, cells in units.items()), collector.threads,
                collector.suite_name, {d: tuple(sorted(k)) for d, k in collector.kernels.items()})


def _reason(output: str) -> str:
    """The line that says why collection stopped (pytest's 'Exit: ...' or its first error line)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Exit:", "ERROR:")) or "quantbench:" in line:
            return line.removeprefix("Exit: ")
    errors = [line for line in lines if line.startswith("E ")]
    return (errors[0] if errors else lines[-1] if lines else "no output")[:500]
