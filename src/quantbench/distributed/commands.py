"""CLI wiring for ``quantbench sweep --ray ADDRESS``; Ray is imported only when the command runs."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from quantbench.errors import QuantbenchError


def register(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep", help="run a sweep on a Ray cluster: one timed job per node, merged into one run file",
        description="Plan the cells `pytest bench/` would run, split them into units of one variant, and run "
                    "each unit on a Ray node that offers a quantbench_slot and carries the unit's device label "
                    "(quantbench/device=cpu|cuda). Options after -- go to pytest on every node "
                    "(e.g. -- --quant fp32,nf4 -k bs8). See docs/distributed.md.")
    sweep.add_argument("--ray", dest="address", required=True, metavar="ADDRESS",
                       help="the cluster: auto, HOST:PORT, or ray://HOST:10001")
    sweep.add_argument("--suite", metavar="NAME_OR_PATH", help="suite name in suites/ or a YAML path (default: default)")
    sweep.add_argument("--benchmark-json", type=Path, default=Path("results.json"), metavar="OUT",
                       help="the merged run file (default: results.json)")
    sweep.add_argument("--results-jsonl", type=Path, metavar="PATH",
                       help="the journal, one line per cell and per unit (default: beside --benchmark-json)")
    sweep.add_argument("--report-dir", type=Path, metavar="DIR", help="write reports and model cards here")
    sweep.add_argument("--max-retries", type=int, default=1, metavar="N",
                       help="run a unit again on another node when its node dies, up to N times (default: 1)")
    sweep.add_argument("--resume", action="store_true",
                       help="skip the units the journal holds as finished without a failed cell, run the rest")
    sweep.add_argument("--node-label", action="append", metavar="KEY=VALUE",
                       help="run only on nodes with this label as well (repeatable), e.g. instance=c7i.2xlarge")
    sweep.add_argument("--node-wait", type=float, default=120.0, metavar="SECONDS",
                       help="how long a unit may wait with no alive node able to take it before it is "
                            "recorded failed (default: 120)")
    sweep.add_argument("pytest_args", nargs="*", metavar="-- PYTEST OPTIONS",
                       help="options for pytest on every node (after --)")
    sweep.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from quantbench.distributed.driver import SweepOptions, run_sweep
    from quantbench.distributed.routing import parse_node_labels

    if args.node_wait <= 0:
        raise QuantbenchError(f"--node-wait {args.node_wait:g}: must be more than 0 seconds")
    opts = SweepOptions(address=args.address, suite=args.suite, benchmark_json=args.benchmark_json,
                        results_jsonl=args.results_jsonl, report_dir=args.report_dir, max_retries=args.max_retries,
                        resume=args.resume, node_labels=parse_node_labels(args.node_label),
                        pytest_args=list(args.pytest_args), node_wait_s=args.node_wait, command=_command(args))
    return run_sweep(opts)


def _command(args: argparse.Namespace) -> str:
    """The command that reproduces this sweep, for the run file and the model cards."""
    words = ["quantbench", "sweep", "--ray", args.address]
    for flag, value in (("--suite", args.suite), ("--benchmark-json", args.benchmark_json),
                        ("--results-jsonl", args.results_jsonl), ("--report-dir", args.report_dir)):
        if value is not None:
            words += [flag, str(value)]
    words += ["--max-retries", str(args.max_retries)] + [w for label in args.node_label or []
                                                         for w in ("--node-label", label)]
    return shlex.join(words + (["--", *args.pytest_args] if args.pytest_args else []))
