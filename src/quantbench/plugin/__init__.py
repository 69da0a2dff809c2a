"""The pytest plugin: options, cell parametrization, run order, and what lands in the JSON.

Registered through the ``pytest11`` entry point, so ``pytest bench/`` finds it. Benchmark
functions ask for one of two fixtures and get parametrized by the suite:

* ``cell``: a text-classification cell, one per model × method × backend × device × batch
  size × sequence length;
* ``generation_cell``: a text-generation cell, one per model × method × backend × device ×
  batch size × prompt length × new tokens;
* ``variant_cell``: one per model × method × backend × device, every task (accuracy, fairness);
* ``lm_variant_cell``: the same for text-generation models only (perplexity, KL);
* ``lm_eval_cell``: the same, when the suite has a ``quality.lm_eval`` section (lm-eval tasks).
* ``serving_cell``: one per variant and serving scenario of the suite's ``serving`` section
  (MLPerf LoadGen; none without that section).
"""

from __future__ import annotations

import pytest

from quantbench.errors import QuantbenchError
from quantbench.plugin.collection import pytest_collection_modifyitems, pytest_generate_tests
from quantbench.plugin.fixtures import (quantbench_lm_eval, quantbench_pool, quantbench_quality, quantbench_run,
                                       quantbench_serving)
from quantbench.plugin.options import option, parse_list, pytest_addoption
from quantbench.plugin.outputs import (pytest_benchmark_update_json, pytest_benchmark_update_machine_info,
                                       pytest_runtest_makereport, pytest_sessionfinish, pytest_terminal_summary)
from quantbench.plugin.state import QuantbenchState, state

__all__ = ["QuantbenchState", "option", "parse_list", "pytest_addoption", "pytest_benchmark_update_json",
           "pytest_benchmark_update_machine_info", "pytest_collection_modifyitems", "pytest_configure",
           "pytest_generate_tests", "pytest_runtest_makereport", "pytest_sessionfinish", "pytest_terminal_summary",
           "quantbench_lm_eval", "quantbench_pool", "quantbench_quality", "quantbench_run", "quantbench_serving",
           "state"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: real-model tests")
    state(config)
    # Reports and gates read the run file: make sure pytest-benchmark writes one (it reads
    # this option in its own pytest_configure, which runs after this one).
    report_dir = option(config, "report_dir")
    if (report_dir or option(config, "gate_baseline")) and not config.getoption("benchmark_json", None):
        import tempfile
        from pathlib import Path

        target = Path(report_dir) if report_dir else Path(tempfile.mkdtemp(prefix="quantbench-"))
        target.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = target / "results.json"
    _open_journal(config)
    from quantbench.plugin import history

    history.check(config)


def _open_journal(config: pytest.Config) -> None:
    from pathlib import Path

    from quantbench.plugin.journal import Journal, finished

    st = state(config)
    path = option(config, "results_jsonl")
    if not path and config.getoption("benchmark_json", None):
        path = Path(config.getoption("benchmark_json")).with_suffix(".jsonl")
    resume = bool(config.getoption("quantbench_resume", False))
    if resume and not path:
        raise pytest.UsageError("--resume needs a journal: give --results-jsonl PATH or --benchmark-json PATH")
    if not path:
        return
    if resume:
        try:
            st.resumed = finished(Path(path))
        except QuantbenchError as exc:
            raise pytest.UsageError(str(exc)) from None
    st.journal = Journal(Path(path), resume=resume)
