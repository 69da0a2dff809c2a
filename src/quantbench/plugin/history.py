"""``--history URL_OR_PATH``: a sweep adds its own run file to the history store when the session ends.

The database is checked when pytest starts (a missing driver, a bad URL or a newer schema stops the
sweep before it measures anything). At the end, after pytest-benchmark wrote ``--benchmark-json``, the
run is added and one line says so. The run file is written first and never touched: when the store
fails, the line names the file and the command that adds it later, and the reports and the gate
still run.

With ``--history``, ``--gate-baseline name:NAME`` reads the run named NAME in the store (names set by
``quantbench baseline save --history``) instead of the baselines folder.

With ``--history`` and ``--report-dir DIR``, the history's trend page for this run's cells (every stored run
of them, per machine, with change points) is written to ``DIR/history/index.html`` and the run's report
links to it.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from quantbench.errors import QuantbenchError
from quantbench.plugin.options import option
from quantbench.plugin.state import state


def target(config: pytest.Config) -> str | None:
    return option(config, "history")


def check(config: pytest.Config) -> None:
    """Open (create or upgrade) the store once at start, so a sweep never runs into a store it cannot use."""
    where = target(config)
    if not where:
        return
    from quantbench.history import open_store

    try:
        open_store(where).close()
    except QuantbenchError as exc:
        raise pytest.UsageError(f"--history: {exc}") from None


def add_run(session: pytest.Session, write: Callable[[str], Any]) -> None:
    """Add the run file pytest-benchmark wrote to the store; one line either way."""
    config = session.config
    where = target(config)
    if not where:
        return
    output = state(config).output_path
    if not output:
        if not config.getoption("benchmark_json", None):
            write("quantbench history: run not stored: the history keeps the run file, and there is none: "
                  "give --benchmark-json PATH (or --report-dir DIR) with --history")
        else:
            write("quantbench history: run not stored: no benchmark finished, so pytest-benchmark wrote no run file")
        return
    from quantbench.history.database import mask_text

    later = f"quantbench history add --db {mask_text(where)} {output}"
    try:
        from quantbench.history import open_store

        with open_store(where) as store:
            added = store.add(output)
            place = store.where
    except QuantbenchError as exc:
        _failed(session, write, f"{exc} (the run file {output} is kept: add it later with `{later}`)")
        return
    except Exception as exc:  # noqa: BLE001 - the store must never cost the run its reports and gate
        _failed(session, write, f"{type(exc).__name__}: {exc} (the run file {output} is kept: add it later with "
                                f"`{later}`)")
        return
    what = f"added run {added.run_id} to" if added.added else f"run already stored as {added.run_id} in"
    write(f"quantbench history: {what} {place} · machine {added.fingerprint.id} · {added.cells} cells")


#: Where the trend page goes, relative to the report folder (the run report links here).
TREND_PAGE = "history/index.html"


def trend_page(session: pytest.Session, report_dir: str, write: Callable[[str], Any]) -> str | None:
    """With ``--history``, write the trend page of this run's cells into the report folder; the link the
    run's report takes (None without ``--history`` or when the page could not be written: one line says why,
    and the reports are written all the same)."""
    where = target(session.config)
    output = state(session.config).output_path
    if not (where and output):
        return None
    from pathlib import Path

    try:
        from quantbench.history.ingest import cell_name
        from quantbench.history.report import write_trend_page
        from quantbench.results import load_run

        cells = sorted({cell_name(record) for record in load_run(output).records})
        page = write_trend_page(where, Path(report_dir) / Path(TREND_PAGE).parent, cells=cells,
                                back_link="../index.html")
    except Exception as exc:  # noqa: BLE001 - a trend page must never cost the run its reports and gate
        write(f"quantbench history: trend page not written: {type(exc).__name__}: {' '.join(str(exc).split())}")
        return None
    write(f"quantbench history: wrote the trend page of this run's cells to {page}")
    return TREND_PAGE


def _failed(session: pytest.Session, write: Callable[[str], Any], message: str) -> None:
    write(f"quantbench history: error: {' '.join(message.split())}")
    if session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def named_baseline(config: pytest.Config, baseline: str) -> Any:
    """``name:NAME`` with ``--history``: the named run from the store (a :class:`quantbench.results.Run`);
    anything else is returned as given, for the gate to read."""
    where = target(config)
    if not (where and baseline.startswith("name:")):
        return baseline
    from quantbench.history import open_store

    with open_store(where) as store:
        return store.load_run(store.named(baseline[len("name:"):]).id)
