"""`quantbench` command line: each subcommand lives in its own module and registers itself.

Errors from input (:class:`QuantbenchError`) print one line and exit 2; regressions found by
``gate`` exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from quantbench.errors import QuantbenchError

#: Modules that each expose ``register(subparsers)``; a parser they add sets ``func``.
COMMAND_MODULES = (
    "quantbench.reports.commands",
    "quantbench.gate.commands",
    "quantbench.cache.commands",
    "quantbench.efficiency.commands",
    "quantbench.distributed.commands",
    "quantbench.lmeval.commands",
    "quantbench.history.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantbench", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except QuantbenchError as exc:
        print(f"quantbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"quantbench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
