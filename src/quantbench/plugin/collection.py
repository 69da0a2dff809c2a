"""Cells as pytest parameters, and the run order: grouped by variant, fp32 first, latency before quality.

Impossible cells are never parameters; cells of another task, another shard or a finished
earlier run (``--resume``) are deselected, not shown as skips.
"""

from __future__ import annotations

import pytest

from quantbench import cells as cells_mod
from quantbench.errors import QuantbenchError
from quantbench.plugin.options import option
from quantbench.plugin.state import state

#: fixture name -> (one cell per variant?, the task it serves; None: every task)
CELL_FIXTURES = {"cell": (False, "text-classification"), "generation_cell": (False, "text-generation"),
                  "variant_cell": (True, None), "lm_variant_cell": (True, "text-generation"),
                  "lm_eval_cell": (True, "text-generation"),
                  "serving_cell": (True, None)}
#: Fixtures whose cells are one per variant and serving scenario (the suite's ``serving`` section).
SERVING_FIXTURES = frozenset({"serving_cell"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture = next((name for name in CELL_FIXTURES if name in metafunc.fixturenames), None)
    if fixture is None:
        return
    per_variant, task = CELL_FIXTURES[fixture]
    st = state(metafunc.config)
    try:
        planned = cells_mod.expand(st.suite, st.filters(), per_variant=per_variant, task=task,
                                   serving=fixture in SERVING_FIXTURES)
        if fixture == "lm_eval_cell" and st.suite.quality.lm_eval is None:
            planned = []  # no quality.lm_eval section: the benchmark is deselected, not skipped
    except (QuantbenchError, pytest.UsageError) as exc:
        # Raised here, pytest would show a collection error with a traceback per module; keep
        # the message and stop once collection is over, with one line.
        st.collection_error = f"quantbench: {exc}"
        planned = []
    params = [pytest.param(p.cell, id=p.cell.id,
                           marks=[pytest.mark.skip(reason=p.skip_reason)] if p.skip_reason else [])
              for p in planned]
    metafunc.parametrize(fixture, params)


# fp32's perplexity pass comes before accuracy: the KL of later variants needs its log-probs.
# Serving cells run right after a variant's timed cells, before its quality passes.
_TEST_ORDER = {"test_latency": 0, "test_generation": 0, "test_serving": 0.5, "test_perplexity": 1, "test_accuracy": 2,
               "test_fairness": 3, "test_lm_eval": 4}


def cell_of(item: pytest.Item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    cell = next((params[name] for name in CELL_FIXTURES if name in params), None)
    return cell if isinstance(cell, cells_mod.Cell) else None


def _serves_no_cell(item: pytest.Item) -> bool:
    """A benchmark function with no cell in this suite (test_generation in a classification suite)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(name in params for name in CELL_FIXTURES) and cell_of(item) is None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run cells grouped by variant (so each is built once), fp32 first, latency before accuracy."""
    st = state(config)
    if st.collection_error:
        pytest.exit(st.collection_error, returncode=pytest.ExitCode.USAGE_ERROR)
    idle = [item for item in items if _serves_no_cell(item)]
    if idle:  # deselected, not shown as "empty parameter set" skips
        config.hook.pytest_deselected(items=idle)
        items[:] = [item for item in items if not _serves_no_cell(item)]
    if not any(cell_of(item) for item in items):
        return
    variant_order = {}
    for planned in cells_mod.expand(st.suite, st.filters(), per_variant=True):
        variant_order.setdefault(planned.cell.variant_key, len(variant_order))

    def key(indexed):
        index, item = indexed
        cell = cell_of(item)
        if cell is None:
            return (0, index)
        return (1, variant_order.get(cell.variant_key, len(variant_order)),
                _TEST_ORDER.get(getattr(item, "originalname", item.name), 9), cell.batch_size, cell.seq_len,
                cell.new_tokens, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
    _deselect(config, items, cell_of)
    for item in items:
        cell = cell_of(item)
        if cell is not None:
            st.models_in_run.add(cell.model)
        if cell is not None and not cell.per_variant:
            st.latency_shapes.setdefault(cell.variant_key, []).append((cell.batch_size, cell.seq_len, cell.new_tokens))


def _deselect(config: pytest.Config, items: list[pytest.Item], cell_of) -> None:
    """--shard keeps this machine's share; --cells-from keeps the listed cells; --resume drops cells the
    journal already holds."""
    from quantbench.plugin.journal import cell_key
    from quantbench.plugin.sharding import parse_shard, shard_of

    st = state(config)
    keys = {id(item): cell_key(item.originalname, cell_of(item).id) for item in items if cell_of(item)}
    drop = set()
    shard = option(config, "shard")
    if shard:
        try:
            k, n = parse_shard(shard)
        except QuantbenchError as exc:
            pytest.exit(f"quantbench: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)
        owner = shard_of(list(keys.values()), n)
        drop |= {i for i, key in keys.items() if owner[key] != k}
    cells_from = config.getoption("quantbench_cells_from", None)
    if cells_from:
        wanted = _read_cells_from(cells_from)
        missing = sorted(wanted - set(keys.values()))
        if missing:
            pytest.exit(f"quantbench: --cells-from {cells_from}: {len(missing)} listed cell(s) not in this "
                        f"collection, e.g. {missing[0]}", returncode=pytest.ExitCode.USAGE_ERROR)
        drop |= {i for i, key in keys.items() if key not in wanted}
    if st.resumed:
        drop |= {i for i, key in keys.items() if key in st.resumed}
        st.resumed = {key: r for key, r in st.resumed.items() if key in set(keys.values())}
    if drop:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in drop])
        items[:] = [item for item in items if id(item) not in drop]


def _read_cells_from(path: str) -> set[str]:
    """The cell keys (``test_latency[cell id]``) in a --cells-from file, one a line."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        pytest.exit(f"quantbench: --cells-from {path}: cannot read ({exc.strerror or exc})",
                    returncode=pytest.ExitCode.USAGE_ERROR)
    return {line.strip() for line in text.splitlines() if line.strip()}
