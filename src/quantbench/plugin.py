"""The pytest plugin: options, cell parametrization, run order, and what lands in the JSON.

Registered through the ``pytest11`` entry point, so ``pytest bench/`` finds it. Benchmark
functions ask for one of two fixtures and get parametrized by the suite:

* ``cell``: a text-classification cell, one per model × method × backend × device × batch
  size × sequence length;
* ``generation_cell``: a text-generation cell, one per model × method × backend × device ×
  batch size × prompt length × new tokens;
* ``variant_cell``: one per model × method × backend × device, every task (accuracy, fairness);
* ``lm_variant_cell``: the same for text-generation models only (perplexity, KL).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from quantbench import cells as cells_mod
from quantbench.errors import QuantbenchError
from quantbench.suite import Suite, load_suite

log = logging.getLogger(__name__)

# option name -> (env var, parser, help)
_LIST_OPTIONS = {
    "model": (str, "model names from the suite"),
    "quant": (str, "quantization methods (fp32, fp16, bf16, dynamic_int8, static_int8, int8wo, int8dq, nf4, "
                   "bnb_int8)"),
    "backend": (str, "backends (pytorch, onnxruntime)"),
    "device": (str, "devices (cpu, cuda, mps)"),
    "batch_size": (int, "batch sizes"),
    "seq_len": (int, "sequence lengths (classification)"),
    "prompt_len": (int, "prompt lengths in tokens (generation)"),
    "new_tokens": (int, "new tokens per row (generation)"),
}
#: fixture name -> (one cell per variant?, the task it serves; None: every task)
_CELL_FIXTURES = {"cell": (False, "text-classification"), "generation_cell": (False, "text-generation"),
                  "variant_cell": (True, None), "lm_variant_cell": (True, "text-generation")}
_STATE = pytest.StashKey["QuantbenchState"]()


def _env(name: str) -> str | None:
    return os.environ.get(f"QUANTBENCH_{name.upper()}") or None


def parse_list(option: str, raw: str | None, kind: type) -> tuple:
    """``"1,8, 32"`` -> ``(1, 8, 32)``; a bad item is a usage error naming it."""
    if not raw:
        return ()
    items = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            items.append(kind(item))
        except ValueError:
            raise pytest.UsageError(f"--{option.replace('_', '-')}: {item!r} is not a valid {kind.__name__}") from None
    return tuple(items)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("quantbench", "quantbench: quantized transformer benchmarks")
    group.addoption("--suite", default=None, help="suite name in suites/ or a YAML path (env QUANTBENCH_SUITE; "
                                                  "default: default)")
    for name, (_kind, what) in _LIST_OPTIONS.items():
        group.addoption(f"--{name.replace('_', '-')}", dest=f"quantbench_{name}", default=None, metavar="LIST",
                        help=f"narrow the sweep to these comma-separated {what} (env QUANTBENCH_{name.upper()})")
    group.addoption("--price-per-hour", dest="quantbench_price_per_hour", default=None, metavar="USD",
                    help="machine price in USD per hour: adds cost per million inferences / output tokens "
                         "(env QUANTBENCH_PRICE_PER_HOUR; default: the suite's cost.price_per_hour)")
    group.addoption("--threads", dest="quantbench_threads", default=None, metavar="N",
                    help="torch and ONNX Runtime intra-op threads (env QUANTBENCH_THREADS; default: the suite's)")
    group.addoption("--results-jsonl", dest="quantbench_results_jsonl", default=None, metavar="PATH",
                    help="journal every finished cell here as it ends (default: next to --benchmark-json, "
                         "results.jsonl; env QUANTBENCH_RESULTS_JSONL)")
    group.addoption("--resume", dest="quantbench_resume", action="store_true", default=False,
                    help="skip the cells the journal already holds as passed, run the rest, and write a "
                         "complete JSON with every cell once")
    group.addoption("--shard", dest="quantbench_shard", default=None, metavar="K/N",
                    help="run only shard K of N (stable and even across machines; env QUANTBENCH_SHARD)")
    group.addoption("--report-dir", dest="quantbench_report_dir", default=None, metavar="DIR",
                    help="write HTML/JSON reports and model cards here after the run (env QUANTBENCH_REPORT_DIR)")
    group.addoption("--gate-baseline", dest="quantbench_gate_baseline", default=None, metavar="JSON",
                    help="after the run, gate the results against this baseline run file, or name:NAME for a "
                         "saved baseline; a regression makes pytest exit 1 (env QUANTBENCH_GATE_BASELINE)")
    group.addoption("--gate-policy", dest="quantbench_gate_policy", default=None, metavar="YAML",
                    help="gate policy file (default: the suite's `gates:` or the built-in policy; "
                         "env QUANTBENCH_GATE_POLICY)")


def option(config: pytest.Config, name: str) -> str | None:
    """Command line first, then the QUANTBENCH_* environment variable."""
    value = config.getoption(f"quantbench_{name}", default=None) if name != "suite" else config.getoption("suite")
    return value if value is not None else _env(name)


@dataclass
class QuantbenchState:
    config: pytest.Config
    _suite: Suite | None = None
    _pool: Any = None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)  # nodeid -> record
    collection_error: str | None = None
    output_path: Any = None  # the run file pytest-benchmark wrote
    journal: Any = None  # quantbench.journal.Journal, when journaling
    resumed: dict[str, dict[str, Any]] = field(default_factory=dict)  # cell key -> journal record
    latency_shapes: dict[tuple, list] = field(default_factory=dict)  # variant key -> [(batch, seq, new)] to run
    models_in_run: set = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)

    @property
    def suite(self) -> Suite:
        if self._suite is None:
            suite = load_suite(option(self.config, "suite") or "default")
            import dataclasses

            threads = option(self.config, "threads")
            if threads:
                n = parse_list("threads", threads, int)[0]
                suite = dataclasses.replace(suite, measure=dataclasses.replace(suite.measure, threads=n))
            price = option(self.config, "price_per_hour")
            if price:
                from quantbench.efficiency.cost import parse_price

                try:
                    suite = dataclasses.replace(suite, price_per_hour=parse_price(price, where="--price-per-hour"))
                except QuantbenchError as exc:
                    raise pytest.UsageError(str(exc)) from None
            self._suite = suite
        return self._suite

    def filters(self) -> dict[str, tuple]:
        return {name: parse_list(name, option(self.config, name), kind) for name, (kind, _) in _LIST_OPTIONS.items()}

    @property
    def pool(self):
        if self._pool is None:
            from quantbench.pool import VariantPool

            self.apply_threads()
            self._pool = VariantPool(self.suite, latency_shapes=self.latency_shapes)
        return self._pool

    def apply_threads(self) -> None:
        if self.suite.measure.threads:
            import torch

            torch.set_num_threads(self.suite.measure.threads)


def state(config: pytest.Config) -> QuantbenchState:
    if _STATE not in config.stash:
        config.stash[_STATE] = QuantbenchState(config)
    return config.stash[_STATE]


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


def _open_journal(config: pytest.Config) -> None:
    from pathlib import Path

    from quantbench.journal import Journal, finished

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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture = next((name for name in _CELL_FIXTURES if name in metafunc.fixturenames), None)
    if fixture is None:
        return
    per_variant, task = _CELL_FIXTURES[fixture]
    st = state(metafunc.config)
    try:
        planned = cells_mod.expand(st.suite, st.filters(), per_variant=per_variant, task=task)
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
_TEST_ORDER = {"test_latency": 0, "test_generation": 0, "test_perplexity": 1, "test_accuracy": 2, "test_fairness": 3}


def _cell_of(item: pytest.Item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    cell = next((params[name] for name in _CELL_FIXTURES if name in params), None)
    return cell if isinstance(cell, cells_mod.Cell) else None


def _serves_no_cell(item: pytest.Item) -> bool:
    """A benchmark function with no cell in this suite (test_generation in a classification suite)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(name in params for name in _CELL_FIXTURES) and _cell_of(item) is None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run cells grouped by variant (so each is built once), fp32 first, latency before accuracy."""
    cell_of = _cell_of
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
    """--shard keeps this machine's share; --resume drops cells the journal already holds."""
    from quantbench.journal import cell_key
    from quantbench.sharding import parse_shard, shard_of

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
    if st.resumed:
        drop |= {i for i, key in keys.items() if key in st.resumed}
        st.resumed = {key: r for key, r in st.resumed.items() if key in set(keys.values())}
    if drop:
        config.hook.pytest_deselected(items=[item for item in items if id(item) in drop])
        items[:] = [item for item in items if id(item) not in drop]


@pytest.fixture(scope="session")
def quantbench_pool(request: pytest.FixtureRequest):
    """The session's VariantPool: builds each variant once, one in memory at a time."""
    st = state(request.config)
    pool = st.pool
    # Resolve the models up front with output capture off, so a first-time fine-tune of the
    # embedded model shows its progress bar (and is not charged to the first cell).
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        try:
            pool.start_memory_workers()  # its imports overlap the set-up below
        except Exception as exc:  # noqa: BLE001 - only a head start: the first worker starts it again,
            # and a real failure then fails that cell with its reason.
            log.warning("quantbench: the memory workers' server did not start early: %s", exc)
        for model in sorted({key[0] for key in st.latency_shapes} | st.models_in_run):
            try:
                from quantbench.models import import_model_code

                import_model_code(pool.source(model), st.suite.model(model).task)
            except QuantbenchError:
                pass  # every cell of this model then fails with the reason, and the rest goes on
    # What is loaded by now (libraries, pytest's items) lives for the session: frozen out of the
    # garbage collector, each collection between variants costs milliseconds instead of 0.17 s.
    gc.freeze()
    yield pool
    pool.release()
    gc.unfreeze()


@pytest.fixture(scope="session")
def quantbench_evaluator(quantbench_pool):
    """Accuracy and fairness against fp32; keeps each variant's predictions for the run."""
    from quantbench.evaluation import Evaluator

    return Evaluator(quantbench_pool)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    cell = _cell_of(item)
    if cell is None or (report.when != "call" and report.passed):
        return report
    if report.when == "call" or report.failed or report.skipped:
        record = {"test": item.originalname, "cell_id": cell.id, "params": cell.params(), "outcome": report.outcome}
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            record["reason"] = reason.removeprefix("Skipped: ")
        elif report.failed and call.excinfo is not None:
            record["reason"] = call.excinfo.exconly().splitlines()[0][:500]
            if isinstance(call.excinfo.value, (QuantbenchError, MemoryError)) or \
                    type(call.excinfo.value).__name__ == "OutOfMemoryError":
                # An expected way for a cell to fail: one line, not a traceback.
                report.longrepr = f"{cell.id}: {record['reason']}"
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        st = state(item.config)
        if report.passed and fixture is not None:
            record["extra_info"] = dict(fixture.extra_info)
        st.outcomes[item.nodeid] = record
        if st.journal:
            stats = getattr(fixture, "stats", None) if report.passed else None
            st.journal.append({**{k: v for k, v in record.items() if k != "extra_info"},
                               "benchmark": stats.as_dict(include_data=True) if stats else None})
    return report


def _failed_and_skipped(st: QuantbenchState) -> tuple[list, list]:
    failed = [{k: v for k, v in r.items() if k != "extra_info"} for r in st.outcomes.values() if r["outcome"] == "failed"]
    skipped = [{k: v for k, v in r.items() if k != "extra_info"} for r in st.outcomes.values() if r["outcome"] == "skipped"]
    return failed, skipped


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    from quantbench.machine import machine_info as quantbench_machine_info

    machine_info["quantbench"] = quantbench_machine_info()
    st = state(config)
    if st._pool is not None and st._pool.limits:  # measured (or read from the cache) during the run
        machine_info["quantbench"]["limits"] = st._pool.limits


def pytest_benchmark_update_json(config: pytest.Config, benchmarks, output_json: dict[str, Any]) -> None:
    from quantbench.results import SCHEMA_VERSION

    st = state(config)
    failed, skipped = _failed_and_skipped(st)
    suite = st._suite
    st.output_path = config.getoption("benchmark_json", None)
    # Cells finished by an earlier, interrupted run (--resume): back into the one JSON.
    output_json["benchmarks"].extend(record["benchmark"] for record in st.resumed.values())
    output_json["quantbench"] = {
        "schema_version": SCHEMA_VERSION,
        "suite": {**(suite.summary() if suite else {}), "command": _command(config)},
        "failed": failed,
        "skipped": skipped,
        "wall_seconds": round(time.perf_counter() - st.started, 1),
        "setup": _setup(st),
    }


def _setup(st: QuantbenchState) -> dict[str, Any]:
    from quantbench.summary import setup_summary

    return setup_summary(list(st.outcomes.values()), st._pool.setup if st._pool else {})


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    st = state(config)
    if not st.outcomes:
        return
    from quantbench.summary import render_setup, render_summary

    failed, skipped = _failed_and_skipped(st)
    terminalreporter.write_sep("=", "quantbench summary")
    for line in render_summary(list(st.outcomes.values())):
        terminalreporter.write_line(line)
    terminalreporter.write_line(render_setup(_setup(st)))
    for record in failed:
        terminalreporter.write_line(f"FAILED {record['test']}[{record['cell_id']}]: {record.get('reason', '')}")
    if skipped:
        reasons = sorted({r.get("reason", "") for r in skipped})
        terminalreporter.write_line(f"skipped {len(skipped)} cell(s): " + "; ".join(reasons))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After pytest-benchmark has written the run file: reports, then the gate."""
    st = state(session.config)
    if not st.output_path:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    report_dir = option(session.config, "report_dir")
    if report_dir:
        from quantbench.reports import write_reports

        written = write_reports(st.output_path, report_dir, command=_command(session.config))
        write(f"quantbench: wrote {len(written)} report files to {report_dir} (open {report_dir}/index.html)")
    baseline = option(session.config, "gate_baseline")
    if baseline:
        from quantbench.gate import gate_paths

        try:
            result = gate_paths(baseline, st.output_path, option(session.config, "gate_policy") or
                                (st.suite.gates or None))
        except QuantbenchError as exc:
            write(f"quantbench gate: error: {exc}")
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        for line in result.render_table().splitlines():
            write(line)
        if result.exit_code and session.exitstatus == 0:
            session.exitstatus = result.exit_code


def _command(config: pytest.Config) -> str:
    return " ".join(["pytest", *config.invocation_params.args])
