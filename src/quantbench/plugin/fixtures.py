"""The session fixtures benchmarks ask for: the run context, the variant pool, the quality scorers."""

from __future__ import annotations

import contextlib
import gc
import logging
from typing import Any

import pytest

from quantbench.errors import QuantbenchError
from quantbench.plugin.state import state

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def quantbench_run(request: pytest.FixtureRequest):
    """The session's RunContext: the suite, its data, resolved models, tokenizers and limits."""
    st = state(request.config)
    run = st.run
    # Resolve the models up front with output capture off, so a first-time fine-tune of the
    # embedded model shows its progress bar (and is not charged to the first cell).
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        try:
            run.start_memory_workers()  # its imports overlap the set-up below
        except Exception as exc:  # noqa: BLE001 - only a head start: the first worker starts it again,
            # and a real failure then fails that cell with its reason.
            log.warning("quantbench: the memory workers' server did not start early: %s", exc)
        for model in sorted({key[0] for key in st.latency_shapes} | st.models_in_run):
            try:
                from quantbench.models import import_model_code

                import_model_code(run.source(model), st.suite.model(model).task)
            except QuantbenchError:
                pass  # every cell of this model then fails with the reason, and the rest goes on
    # What is loaded by now (libraries, pytest's items) lives for the session: frozen out of the
    # garbage collector, each collection between variants costs milliseconds instead of 0.17 s.
    gc.freeze()
    yield run
    gc.unfreeze()


@pytest.fixture(scope="session")
def quantbench_pool(quantbench_run):
    """The session's VariantPool: builds each variant once, one in memory at a time."""
    from quantbench.runner.pool import VariantPool

    pool = VariantPool()
    yield pool
    pool.release()


class QualityScorers:
    """Each task's quality scorer for the run, made when a cell of that task first asks."""

    def __init__(self, run, pool):
        self.run, self.pool = run, pool
        self._by_task: dict[str, Any] = {}

    def for_cell(self, cell):
        from quantbench import runner

        if cell.task not in self._by_task:
            self._by_task[cell.task] = runner.quality_scorer(cell.task, self.run, self.pool)
        return self._by_task[cell.task]


@pytest.fixture(scope="session")
def quantbench_quality(quantbench_run, quantbench_pool):
    """Accuracy, fairness and LM quality against fp32; keeps each variant's predictions for the run."""
    return QualityScorers(quantbench_run, quantbench_pool)


@pytest.fixture(scope="session")
def quantbench_lm_eval(quantbench_run, quantbench_pool):
    """The suite's lm-eval tasks on each generation variant; keeps each variant's per-document results."""
    from quantbench.lmeval.quality import LmEvalQuality

    return LmEvalQuality(quantbench_run, quantbench_pool)


@pytest.fixture(scope="session")
def quantbench_serving(request: pytest.FixtureRequest):
    """What serving cells read from the session: where LoadGen's logs go (``<report dir>/serving``, so
    the report folder holds them, else beside the run's JSON, else a temporary folder), the folder
    their record's paths are relative to, and the batch sizes ``--batch-size`` keeps (the settings)."""
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    from quantbench.plugin.options import option

    report_dir = option(request.config, "report_dir")
    json_path = request.config.getoption("benchmark_json", None)
    base = Path(report_dir) if report_dir else Path(json_path).parent if json_path else \
        Path(tempfile.mkdtemp(prefix="quantbench-serving-"))
    (base / "serving").mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(log_root=base / "serving", relative_to=base,
                           batch_sizes=state(request.config).filters().get("batch_size") or ())
