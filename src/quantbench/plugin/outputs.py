"""What a run writes: each cell's outcome (journal and JSON), machine info, the summary, reports, the gate."""

from __future__ import annotations

import time
from typing import Any

import pytest

from quantbench.errors import QuantbenchError
from quantbench.plugin.collection import cell_of
from quantbench.plugin.options import option
from quantbench.plugin.state import QuantbenchState, state


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    cell = cell_of(item)
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
    from quantbench.hardware.machine import machine_info as quantbench_machine_info

    machine_info["quantbench"] = quantbench_machine_info()
    st = state(config)
    if st._run is not None and st._run.limits:  # measured (or read from the cache) during the run
        machine_info["quantbench"]["limits"] = st._run.limits


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
    from quantbench.plugin.summary import setup_summary

    return setup_summary(list(st.outcomes.values()), st._run.setup if st._run else {})


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    st = state(config)
    if not st.outcomes:
        return
    from quantbench.plugin.summary import render_setup, render_summary

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
    """After pytest-benchmark has written the run file: the history, reports, then the gate."""
    from quantbench.plugin import history

    st = state(session.config)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else print
    history.add_run(session, write)
    if not st.output_path:
        return
    report_dir = option(session.config, "report_dir")
    if report_dir:
        from quantbench.reports import write_reports

        trend = history.trend_page(session, report_dir, write)  # with --history: the report links to it
        written = write_reports(st.output_path, report_dir, command=_command(session.config), trend_page=trend)
        write(f"quantbench: wrote {len(written)} report files to {report_dir} (open {report_dir}/index.html)")
    baseline = option(session.config, "gate_baseline")
    if baseline:
        from quantbench.gate import gate_paths

        try:
            result = gate_paths(history.named_baseline(session.config, baseline), st.output_path,
                                option(session.config, "gate_policy") or (st.suite.gates or None))
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
