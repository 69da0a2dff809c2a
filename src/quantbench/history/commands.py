"""``quantbench history add|list|machines|fingerprint|report|export``: import runs into the history, look at
it, draw its trend page and export a run for Bencher or github-action-benchmark."""

from __future__ import annotations

import argparse
import sys

from quantbench.errors import QuantbenchError
from quantbench.history.database import DEFAULT_DB, ENV_VAR, default_db

#: quantbench.history.export.FORMATS, spelled here so that building the parser imports nothing heavy.
EXPORT_FORMATS = ("bmf", "github-action-benchmark")

EPILOG = f"""The database is a file path (SQLite) or a URL: sqlite:///PATH, postgresql+psycopg://USER:PASSWORD@HOST/DB.
Default: ${ENV_VAR}, else {DEFAULT_DB}. Needs the history extra: pip install 'quantbench[history]'.
examples:
  quantbench history add results.json docs/runs/*.json
  quantbench history add --db postgresql+psycopg://bench@db.example/history results.json
  quantbench history list --branch main --last 10
  quantbench history report -o reports/history
  quantbench history export --format bmf --latest -o reports/bmf.json
  quantbench history export --format github-action-benchmark --latest -o reports/github-action-benchmark.json
  pytest bench/ --benchmark-json results.json --history reports/history.sqlite
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    history = subparsers.add_parser(
        "history", help="keep every run in a database (SQLite or PostgreSQL): list them, chart trends, export them",
        description="The run history: every run's pytest-benchmark JSON, its cells' values, commit and machine "
                    "fingerprint, in one database.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = history.add_subparsers(dest="history_command", required=True, metavar="ACTION")

    def db_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--db", metavar="URL_OR_PATH", default=None,
                            help=f"the history database (default: ${ENV_VAR}, else {DEFAULT_DB})")

    add = actions.add_parser("add", help="import run files (old ones too); a run already stored is left as it is")
    db_option(add)
    add.add_argument("runs", nargs="+", metavar="RUN.json")
    add.set_defaults(func=run_add)

    listing = actions.add_parser("list", help="the stored runs in commit order: commit, time, machine, suite")
    db_option(listing)
    listing.add_argument("--machine", metavar="ID", help="only this machine fingerprint")
    listing.add_argument("--branch", help="only runs of this branch")
    listing.add_argument("--suite", help="only runs of this suite")
    listing.add_argument("--last", type=int, metavar="N", help="only the last N runs")
    listing.set_defaults(func=run_list)

    machines = actions.add_parser("machines", help="the machine fingerprints stored, with their run counts")
    db_option(machines)
    machines.set_defaults(func=run_machines)

    fingerprint = actions.add_parser("fingerprint", help="this machine's fingerprint, or each run file's")
    fingerprint.add_argument("runs", nargs="*", metavar="RUN.json")
    fingerprint.add_argument("--json", action="store_true", help="print the fields as JSON")
    fingerprint.set_defaults(func=run_fingerprint)

    report = actions.add_parser(
        "report", help="write the trend page (DIR/index.html): each cell's values across commits, one line per "
                       "machine, change points and current trends")
    db_option(report)
    report.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for index.html")
    report.add_argument("--metric", action="append", metavar="GLOB",
                        help="metrics to draw (repeatable, globs; default: the gate's default metrics and lm-eval's)")
    report.add_argument("--cell", action="append", metavar="GLOB", help="only cells matching (repeatable, globs)")
    report.add_argument("--machine", action="append", metavar="ID", help="only this machine fingerprint (repeatable)")
    report.set_defaults(func=run_report)

    export = actions.add_parser(
        "export", help="write one stored run as Bencher Metric Format or github-action-benchmark's custom JSON")
    db_option(export)
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="bmf: one JSON object for `bencher run --adapter json`; github-action-benchmark: "
                             "FILE-smaller.json and FILE-bigger.json for its customSmallerIsBetter and "
                             "customBiggerIsBetter tools")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--run", type=int, metavar="ID", help="the stored run's id (quantbench history list)")
    which.add_argument("--latest", action="store_true", help="the last run in commit order (the default)")
    export.add_argument("--machine", metavar="ID", help="with --latest: the last run of this machine fingerprint")
    export.add_argument("--branch", help="with --latest: the last run of this branch")
    export.add_argument("--metric", action="append", metavar="GLOB", help="only these metrics (repeatable, globs)")
    export.add_argument("-o", "--output", required=True, metavar="FILE")
    export.set_defaults(func=run_export)


def _open(args: argparse.Namespace):
    from quantbench.history import open_store

    return open_store(args.db or default_db())


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def run_add(args: argparse.Namespace) -> int:
    status = 0
    with _open(args) as store:
        for path in args.runs:
            try:
                added = store.add(path)
            except QuantbenchError as exc:  # one bad file does not stop an import of many
                print(f"quantbench history add: error: {exc}", file=sys.stderr)
                status = 2
                continue
            what = f"added as run {added.run_id}" if added.added else f"already stored as run {added.run_id}"
            missing = f" (not recorded: {', '.join(added.fingerprint.missing)})" if added.fingerprint.missing else ""
            print(f"{path}: {what} · machine {added.fingerprint.id}{missing} · {added.cells} cells, "
                  f"{added.values} values")
    return status


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        runs = store.runs(machine=args.machine, branch=args.branch, suite=args.suite, limit=args.last)
        where = store.where
    if not runs:
        print(f"no runs in {where}")
        return 0
    rows = [(str(r.id), (r.commit_id or "-")[:12] + ("*" if r.dirty else ""), _when(r.commit_time), _when(r.run_time),
             r.branch or "-", r.machine_id, r.suite or "-", str(r.cells), ",".join(r.names)) for r in runs]
    _table(("run", "commit", "commit time", "run time", "branch", "machine", "suite", "cells", "names"), rows)
    return 0


def run_machines(args: argparse.Namespace) -> int:
    with _open(args) as store:
        machines, where = store.machines(), store.where
    if not machines:
        print(f"no machines in {where}")
        return 0
    _table(("machine", "runs", "description"), [(m["id"], str(m["runs"]), m["label"]) for m in machines])
    return 0


def run_fingerprint(args: argparse.Namespace) -> int:
    import json

    from quantbench.history import fingerprint
    from quantbench.results import load_run

    found = [(path, fingerprint.from_machine_info(load_run(path).machine_info)) for path in args.runs] \
        or [("this machine", fingerprint.this_machine())]
    for where, print_ in found:
        if args.json:
            print(json.dumps({"source": where, **print_.to_json()}, sort_keys=True))
        else:
            print(f"{where}: {print_.id} · {print_.label}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from quantbench.history.database import mask_text
    from quantbench.history.report import write_page
    from quantbench.history.series import build

    with _open(args) as store:
        history = build(store, metrics=args.metric, cells=args.cell, machines=args.machine)
    words = ["quantbench history report", *([f"--db {mask_text(args.db)}"] if args.db else []),
             *(f"--{name} '{value}'" for name in ("metric", "cell", "machine") for value in getattr(args, name) or ()),
             f"-o {args.output}"]
    page = write_page(history, args.output, command=" ".join(words))
    print(f"wrote {page}: {len({s.cell for s in history.series})} cells, {len(history.series)} series on "
          f"{len(history.machines)} machine(s) over {len(history.commits)} commit(s); "
          f"{len(history.steps())} change point(s)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from quantbench.history.export import BMF, export

    if args.run is not None and (args.machine or args.branch):
        raise QuantbenchError("--machine and --branch choose the latest run: give them without --run")
    with _open(args) as store:
        done = export(store, args.format, args.output, run_id=args.run, machine=args.machine, branch=args.branch,
                      metrics=args.metric)
    commit = (done.commit or "")[:12] or "none"
    what = "benchmarks" if args.format == BMF else "cells"
    print(f"wrote {', '.join(str(p) for p in done.paths)}: run {done.run_id} (commit {commit}, machine "
          f"{done.machine}): {done.benchmarks} {what}, {done.entries} values")
    return 0
