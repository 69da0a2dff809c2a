"""`quantbench cache list|clear`: see and empty the artifact cache."""

from __future__ import annotations

import argparse

from quantbench import cache


def _list(args: argparse.Namespace) -> int:
    rows = cache.entries()
    print(f"cache: {cache.cache_root()}")
    if not rows:
        print("(empty)")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['kind']:<7} {r['name']:<{width}} {r['size_mb']:>9.1f} MB  {r['status']}")
    print(f"{len(rows)} entries, {sum(r['size_mb'] for r in rows):.1f} MB")
    return 0


def _clear(args: argparse.Namespace) -> int:
    removed = cache.clear(args.kind)
    print(f"removed {removed} cache entries from {cache.cache_root()}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("cache", help="list or clear cached models and artifacts "
                                                 "(location: QUANTBENCH_CACHE_DIR or the user cache dir)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="entries with size and integrity status").set_defaults(func=_list)
    clear = actions.add_parser("clear", help="delete cached entries")
    clear.add_argument("--kind", choices=("models", "onnx"), help="only this kind of entry")
    clear.set_defaults(func=_clear)
