"""CLI wiring for ``quantbench report``, ``compare`` and ``merge``.

Heavy imports (jinja2, huggingface_hub) happen inside the handlers, so other subcommands
start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_REPORT_DIR = Path("reports/latest")
DEFAULT_COMPARE_DIR = Path("reports/compare")


def register(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="HTML report, report.json, github-action-benchmark files and model cards for one run",
        description="Write index.html, report.json, github-action-benchmark-{smaller,bigger}.json and "
                    "model_cards/ for a run file written by `pytest bench/ --benchmark-json`.")
    report.add_argument("results", type=Path, metavar="RESULTS.json")
    report.add_argument("-o", "--out", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR",
                        help=f"output directory (default: {DEFAULT_REPORT_DIR})")
    report.add_argument("--command", dest="reproduce", metavar="CMD",
                        help="the command that reproduces the run, for the model cards "
                             "(default: the suite's recorded command)")
    report.add_argument("--no-model-cards", action="store_true", help="skip model_cards/")
    report.set_defaults(func=_report)

    compare = subparsers.add_parser(
        "compare", help="compare runs from different machines side by side",
        description="Align cells across runs (test x model x quant x backend x batch x seq) and write "
                    "index.html and compare.json with ratios against the first run.")
    compare.add_argument("runs", nargs="+", metavar="RUN.json[@USD_PER_HOUR]",
                         help="run files; RUN.json@2.50 prices that machine at 2.50 USD per hour")
    compare.add_argument("--prices", metavar="YAML", help="a YAML mapping of run file -> USD per hour")
    compare.add_argument("-o", "--out", type=Path, default=DEFAULT_COMPARE_DIR, metavar="DIR",
                         help=f"output directory (default: {DEFAULT_COMPARE_DIR})")
    compare.add_argument("--label", action="append", metavar="TEXT",
                         help="label for a run, once per run in order (default: machine node, CPU, threads, GPU)")
    compare.set_defaults(func=_compare)

    merge = subparsers.add_parser(
        "merge", help="merge run files from shards or machines into one",
        description="Merge pytest-benchmark JSON files written by quantbench into one run file.")
    merge.add_argument("runs", nargs="+", type=Path, metavar="RUN.json")
    merge.add_argument("-o", "--out", type=Path, required=True, metavar="merged.json")
    merge.add_argument("--dedupe", action="store_true",
                       help="keep the first of duplicate benchmarks (same fullname and machine) instead of failing")
    merge.set_defaults(func=_merge)


def _report(args: argparse.Namespace) -> int:
    from quantbench.reports.write import write_reports

    written = write_reports(args.results, args.out, command=args.reproduce, model_cards=not args.no_model_cards)
    cards = sum(1 for name in written if name.startswith("model_cards/"))
    print(f"wrote {args.out / 'index.html'}, report.json, github-action-benchmark-{{smaller,bigger}}.json"
          f" and {cards} model cards")
    return 0


def _compare(args: argparse.Namespace) -> int:
    import json

    from quantbench.reports.pricing import cost_table, read_prices, render_cost_table, split_priced
    from quantbench.reports.compare import labels_for, write_compare
    from quantbench.results import load_runs

    priced = [split_priced(arg) for arg in args.runs]
    paths = [path for path, _ in priced]
    from_file = read_prices(args.prices) if args.prices else {}
    prices = [price if price is not None else from_file.get(path) for path, price in priced]
    written = write_compare(paths, args.out, labels=args.label)
    if any(p is not None for p in prices):
        runs = load_runs(paths)
        table = cost_table(runs, labels_for(runs, args.label), prices)
        for line in render_cost_table(table):
            print(line)
        (args.out / "cost.json").write_text(json.dumps(table, indent=2, default=str))
        written["cost.json"] = args.out / "cost.json"
    print(f"wrote {written['index.html']} and {written['compare.json']}"
          + (" and cost.json" if "cost.json" in written else ""))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from quantbench.reports.merge import merge_files

    out, dropped = merge_files(args.runs, args.out, dedupe=args.dedupe)
    note = f" ({dropped} duplicate benchmarks dropped)" if dropped else ""
    print(f"wrote {out} from {len(args.runs)} files{note}")
    return 0

