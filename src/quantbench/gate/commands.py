"""``quantbench gate``, ``quantbench ab`` and ``quantbench baseline save|list``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from quantbench.errors import QuantbenchError
from quantbench.gate import gate_paths
from quantbench.gate.baseline import ENV_VAR, baseline_dir, baseline_path, list_baselines, save_baseline
from quantbench.gate.lookback import LOOKBACK, MIN_HISTORY, Z_THRESHOLD

GATE_EPILOG = """exit codes: 0 pass, 1 regression (or a failure the policy asks for), 2 bad input.
examples:
  quantbench gate baseline.json results.json --policy suites/gates.yaml --markdown gate.md
  quantbench gate --baseline-name main results.json --json gate.json
  quantbench gate --history reports/history.sqlite results.json --lookback 10   # against this machine's history
"""


AB_EPILOG = """examples:
  quantbench ab --suite ci --baseline-ref origin/main --unresolved fail
  quantbench ab --suite ci --baseline-suite suites/ci-previous.yaml --blocks 6
  quantbench ab --suite ci --baseline-python ../env-torch-2.12/bin/python -- -k bs8
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    gate = subparsers.add_parser(
        "gate", help="compare a run against a baseline; exit 1 on a regression",
        description="Compare CURRENT against BASELINE cell by cell under a policy. Timing changes "
                    "count only when past the threshold and significant (Mann-Whitney U).",
        epilog=GATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    gate.add_argument("runs", nargs="+", metavar="RUN",
                      help="BASELINE.json CURRENT.json, or only CURRENT.json with --baseline-name or --history")
    gate.add_argument("--policy", metavar="YAML",
                      help="policy file, or a suite file with a top-level 'gates:' key (default: built-in)")
    gate.add_argument("--baseline-name", metavar="NAME", help="use a baseline saved by 'quantbench baseline save'")
    gate.add_argument("--baseline-dir", metavar="DIR",
                      help=f"where named baselines live (default: ${ENV_VAR} or .quantbench/baselines)")
    gate.add_argument("--history", metavar="URL_OR_PATH",
                      help="a history database. Alone: judge CURRENT.json against the last --lookback runs of "
                           "each cell on its own machine fingerprint (docs/history.md). With --baseline-name: read "
                           "the run of that name from it (names set by 'quantbench baseline save --history')")
    gate.add_argument("--lookback", type=int, metavar="N",
                      help=f"with --history alone: judge against the last N runs of each cell (default {LOOKBACK})")
    gate.add_argument("--min-history", type=int, metavar="N",
                      help=f"with --history alone: fewer runs of a cell on this machine are insufficient history "
                           f"(default {MIN_HISTORY}; the policy's on_insufficient decides)")
    gate.add_argument("--z", type=float, metavar="Z", dest="z_threshold",
                      help=f"with --history alone: how many robust standard deviations (median and MAD of the "
                           f"window) outside the history a change past its threshold must lie "
                           f"(default {Z_THRESHOLD:g})")
    gate.add_argument("--since", metavar="COMMIT",
                      help="with --history alone: start the history at this commit's first run (a step accepted "
                           "there is no longer judged; the runs before it are left out)")
    gate.add_argument("--strict-machine", action="store_true",
                      help="fail when the baseline was measured on a different machine or software stack")
    gate.add_argument("--allow-missing", action="store_true",
                      help="a baseline cell or metric missing from the current run warns instead of failing")
    gate.add_argument("--unresolved", choices=("warn", "fail"), default=None,
                      help="a timing whose rounds can neither show nor rule out a change past its threshold: "
                           "warn, or fail the gate (default: the policy's on_unresolved, warn)")
    gate.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    gate.add_argument("--json", metavar="FILE", help="write machine-readable verdicts")
    gate.add_argument("--only-problems", action="store_true",
                      help="print only failures, warnings and improvements in the terminal table")
    gate.set_defaults(func=run_gate)

    ab = subparsers.add_parser(
        "ab", help="time a baseline and this checkout in one job, interleaved A B B A; gate them pairwise",
        description="Run the suite's timed cells for the baseline and the candidate (this checkout and "
                    "environment) alternately in fresh pytest processes, in blocks A B, B A, ...; pool each "
                    "side's runs and gate the candidate against the baseline block by block. Exit codes as gate.",
        epilog=AB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ab.add_argument("--suite", required=True, help="the candidate's suite (a name in suites/ or a YAML path)")
    which = ab.add_mutually_exclusive_group()
    which.add_argument("--baseline-suite", metavar="SUITE", help="the baseline is another suite (model, checkpoint, options)")
    which.add_argument("--baseline-ref", metavar="REF", help="the baseline is another commit, checked out as a worktree")
    ab.add_argument("--baseline-python", metavar="PYTHON",
                    help="the baseline's interpreter (a second environment; with --baseline-ref, that commit's)")
    ab.add_argument("--repo", metavar="DIR", default=".", help="the git repository of --baseline-ref (default: .)")
    ab.add_argument("--blocks", type=int, default=None,
                    help="blocks of one run per side, A B | B A | ... (default: 4 when the suite takes each cell in "
                         "3 or more processes, measure.processes; else 8)")
    ab.add_argument("--out", metavar="DIR", default="reports/ab", help="where runs, pooled files and the verdict go")
    ab.add_argument("--policy", metavar="YAML", help="gate policy (default: the suite's gates: block, else built-in)")
    ab.add_argument("--unresolved", choices=("warn", "fail"), default=None, help="as for gate")
    ab.add_argument("--markdown", metavar="FILE", help="write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY)")
    ab.add_argument("--only-problems", action="store_true", help="as for gate")
    ab.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG",
                    help="passed to every run after --, e.g. -- -k 'fp32 and bs8'")
    ab.set_defaults(func=run_ab)

    baseline = subparsers.add_parser("baseline", help="save and list named baselines")
    actions = baseline.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    save = actions.add_parser("save", help="store a run file under a name (a branch or a commit)")
    save.add_argument("run", metavar="RUN.json")
    save.add_argument("--name", required=True, help="baseline name, e.g. main or a commit hash")
    where = save.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="DIR", help=f"baseline folder (default: ${ENV_VAR} or .quantbench/baselines)")
    where.add_argument("--history", metavar="URL_OR_PATH",
                       help="instead of a folder: add the run to this history database (if not stored yet) "
                            "and point the name at it")
    save.set_defaults(func=run_baseline_save)
    listing = actions.add_parser("list", help="list saved baselines")
    where = listing.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="DIR", help=f"baseline folder (default: ${ENV_VAR} or .quantbench/baselines)")
    where.add_argument("--history", metavar="URL_OR_PATH", help="list the names in this history database instead")
    listing.set_defaults(func=run_baseline_list)


def _write(path: str, text: str, *, what: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise QuantbenchError(f"--{what} {path}: cannot write ({exc.strerror or exc})") from None


def _history_gate(args: argparse.Namespace):
    """``gate --history DB CURRENT.json``: the run against its machine's history (gate/history.py)."""
    if len(args.runs) != 1:
        raise QuantbenchError(f"with --history (and no --baseline-name) give only CURRENT.json, got {len(args.runs)} "
                              "files: " + " ".join(args.runs))
    from quantbench.gate.history import gate_history

    options = {name: getattr(args, name) for name in HISTORY_GATE_OPTIONS if getattr(args, name) is not None}
    return gate_history(args.runs[0], args.history, args.policy, **options)


#: ``gate`` options of the gate against the history only, as argparse names them.
HISTORY_GATE_OPTIONS = {"lookback": "--lookback", "min_history": "--min-history", "z_threshold": "--z",
                        "since": "--since"}


def run_gate(args: argparse.Namespace) -> int:
    given = [flag for name, flag in HISTORY_GATE_OPTIONS.items() if getattr(args, name) is not None]
    if given and (args.baseline_name or not args.history):
        raise QuantbenchError(f"{', '.join(given)}: only for the gate against the history, "
                              "--history URL_OR_PATH CURRENT.json (without --baseline-name)")
    if args.history and not args.baseline_name:
        return _report(_history_gate(args), args)
    if args.baseline_name:
        if len(args.runs) != 1:
            raise QuantbenchError(f"with --baseline-name give only CURRENT.json, got {len(args.runs)} files: "
                                  + " ".join(args.runs))
        if args.history:
            from quantbench.history import open_store

            with open_store(args.history) as store:
                baseline, (current,) = store.load_run(store.named(args.baseline_name).id), args.runs
        else:
            baseline, (current,) = baseline_path(args.baseline_name, directory=args.baseline_dir), args.runs
    elif len(args.runs) == 2:
        baseline, current = args.runs
    else:
        raise QuantbenchError(f"expected BASELINE.json CURRENT.json (or --baseline-name NAME CURRENT.json), "
                              f"got {len(args.runs)} file(s): " + " ".join(args.runs))
    result = gate_paths(baseline, current, args.policy, strict_machine=args.strict_machine,
                        allow_missing=args.allow_missing, unresolved=args.unresolved)
    return _report(result, args)


def _report(result, args: argparse.Namespace) -> int:
    """Print the table and the warnings, write the summaries; the exit code."""
    # The table first: if a summary file cannot be written (exit 2), the verdict is still in the log.
    print(result.render_table(only_problems=args.only_problems))
    for warning in result.warnings:  # repeated on stderr so they stand out in CI logs
        print(f"quantbench gate: warning: {warning}", file=sys.stderr)
    if args.markdown:
        _write(args.markdown, result.to_markdown(), what="markdown")
    if args.json:
        _write(args.json, result.to_json(), what="json")
    return result.exit_code


def run_baseline_save(args: argparse.Namespace) -> int:
    if args.history:
        from quantbench.history import open_store

        with open_store(args.history) as store:
            added = store.add(args.run, name=args.name)
            where = store.where
        stored = "added as" if added.added else "already stored as"
        print(f"saved baseline {args.name!r} -> {args.run} {stored} run {added.run_id} in {where}")
        return 0
    path = save_baseline(args.run, name=args.name, directory=args.dir)
    print(f"saved baseline {args.name!r} -> {path}")
    return 0


def _history_baselines(target: str) -> tuple[str, list[tuple[str, ...]]]:
    """(the database, rows of name, run, stored, branch, commit, cells) of the names in a history."""
    from quantbench.history import open_store

    with open_store(target) as store:
        runs = {run.id: run for run in store.runs()}
        rows = [(name, f"run {run_id}", runs[run_id].stored_at.isoformat(timespec="seconds"),
                 runs[run_id].branch or "", (runs[run_id].commit_id or "")[:12], str(runs[run_id].cells))
                for name, run_id in store.names().items()]
        return store.where, rows


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def run_baseline_list(args: argparse.Namespace) -> int:
    if args.history:
        where, rows = _history_baselines(args.history)
        if not rows:
            print(f"no named runs in {where}")
            return 0
        _print_table(("name", "run", "stored", "branch", "commit", "cells"), rows)
        return 0
    infos = list_baselines(directory=args.dir)
    if not infos:
        print(f"no baselines in {baseline_dir(args.dir)}")
        return 0
    _print_table(("name", "saved", "branch", "commit", "cells"),
                 [(i.name, i.saved, i.branch, i.commit, str(i.cells)) for i in infos])
    return 0


def _suite_from_here(suite: str) -> str:
    """A suite given as a file path, made absolute; a shipped suite's name, as it is."""
    path = Path(suite)
    return str(path.resolve()) if path.is_file() else suite


def run_ab(args: argparse.Namespace) -> int:
    from quantbench.gate import interleave
    from quantbench.gate.pooled import pool_runs

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    candidate = interleave.Side(interleave.CANDIDATE, python, args.suite, describe=f"this checkout, suite {args.suite}")
    worktree = None
    if args.baseline_ref:
        repo = Path(args.repo).resolve()
        worktree = out / "baseline-checkout"
        where, env = interleave.checkout(args.baseline_ref, repo, worktree.resolve(), python=args.baseline_python)
        try:
            interleave.check_imports_from(args.baseline_python or python, env, where)
        except QuantbenchError:
            interleave.remove_checkout(repo, where)
            raise
        suite = _suite_from_here(args.suite)  # the same suite file, though the side runs in the worktree
        baseline = interleave.Side(interleave.BASELINE, args.baseline_python or python, suite, env=env, cwd=where,
                                   describe=f"{args.baseline_ref} (worktree {where}), suite {args.suite}")
    elif args.baseline_suite or args.baseline_python:
        baseline = interleave.Side(interleave.BASELINE, args.baseline_python or python, args.baseline_suite or args.suite,
                                   describe=f"suite {args.baseline_suite or args.suite}"
                                            + (f", environment {args.baseline_python}" if args.baseline_python else ""))
    else:
        raise QuantbenchError("give the baseline: --baseline-ref REF, --baseline-suite SUITE or --baseline-python PYTHON")
    blocks = args.blocks or interleave.default_blocks(args.suite)
    started = time.perf_counter()
    try:
        logs = interleave.run_interleaved(baseline, candidate, blocks=blocks, out_dir=out,
                                          pytest_args=tuple(args.pytest_args))
    finally:
        if worktree is not None:
            interleave.remove_checkout(Path(args.repo).resolve(), worktree.resolve())
    pooled = {}
    for label in (interleave.BASELINE, interleave.CANDIDATE):
        mine = [log for log in logs if log.side == label]
        pooled[label] = out / f"{label}.json"
        pooled[label].write_text(json.dumps(pool_runs([log.json for log in mine], [log.block for log in mine])),
                                 encoding="utf-8")
    minutes = (time.perf_counter() - started) / 60
    policy = args.policy or _suite_policy(args.suite)
    result = gate_paths(pooled[interleave.BASELINE], pooled[interleave.CANDIDATE], policy,
                        unresolved=args.unresolved)
    (out / "ab.json").write_text(json.dumps({
        "baseline": baseline.describe, "candidate": candidate.describe, "blocks": blocks,
        "minutes": round(minutes, 2), "runs": [log.to_dict() for log in logs],
        "verdict": json.loads(result.to_json())}, indent=1), encoding="utf-8")
    print(f"quantbench ab: baseline {baseline.describe}; candidate {candidate.describe}; {blocks} blocks, "
          f"{len(logs)} runs in {minutes:.1f} min; pooled runs in {out}")
    print(result.render_table(only_problems=args.only_problems))
    for warning in result.warnings:
        print(f"quantbench ab: warning: {warning}", file=sys.stderr)
    if args.markdown:
        _write(args.markdown, result.to_markdown(), what="markdown")
    return result.exit_code


def _suite_policy(suite: str):
    """The suite's own ``gates:`` block (None: the built-in defaults)."""
    from quantbench.gate.policy import load_policy
    from quantbench.suite import load_suite

    loaded = load_suite(suite)
    return load_policy(loaded.gates, where=f"{suite}: gates") if loaded.gates else None
