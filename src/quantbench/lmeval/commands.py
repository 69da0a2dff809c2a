"""``quantbench lm-eval ...``: lm-evaluation-harness's own command line, with the ``quantbench`` model.

lm-eval 0.4.13 finds models in its registry only, with no plugin entry point, so a bare
``lm_eval --model quantbench`` cannot see this one. This command imports it, then hands every
argument to lm-eval's own parser and runner (``lm_eval._cli.HarnessCLI``), so every lm-eval
option works as documented there. Three defaults are added:

* ``--model quantbench`` when no ``--model`` is given;
* for the quantbench model, ``--batch_size auto`` when none is given, which means the suite's
  ``measure.eval_batch_size`` (batch-sensitive methods are scored one request per pass anyway),
  and ``--device cpu`` when none is given (lm-eval's own default is ``cuda:0``);
* the shipped task's folder (``tweets_sentiment``, built from the suite in ``--model_args``, else
  the ``llm`` suite) added to ``--include_path`` when a shipped task is asked for.

Example: ``quantbench lm-eval --model_args suite=llm,quant=q8_0,backend=llamacpp --tasks tweets_sentiment``.
"""

from __future__ import annotations

import argparse
import sys

from quantbench.errors import QuantbenchError

LM_EVAL_COMMANDS = ("run", "ls", "validate")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lm-eval", help="lm-evaluation-harness on a suite's variant: lm-eval's CLI with the 'quantbench' model",
        description=__doc__.split("\n\n")[0], add_help=False, prefix_chars="\0")  # every argument is lm-eval's
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def lm_eval_argv(args: list[str]) -> list[str]:
    """``args`` as lm-eval's own CLI takes them: ``run`` inserted when no subcommand leads, as lm-eval does."""
    if args and args[0] not in (*LM_EVAL_COMMANDS, "-h", "--help"):
        return ["run", *args]
    return list(args)


def with_defaults(namespace: argparse.Namespace) -> argparse.Namespace:
    """The parsed ``run`` namespace with quantbench's defaults (module docstring)."""
    if namespace.model is None:
        namespace.model = "quantbench"
    model_args = dict(namespace.model_args or {})
    if namespace.model == "quantbench":
        if getattr(namespace, "batch_size", None) is None:
            namespace.batch_size = "auto"
        if namespace.device is None and "device" not in model_args:
            namespace.device = "cpu"
    from quantbench.lmeval.shipped import SHIPPED_TASKS

    if set(namespace.tasks or ()) & set(SHIPPED_TASKS):
        folder = shipped_folder(str(model_args.get("suite", "llm")) if namespace.model == "quantbench" else "llm")
        given = namespace.include_path
        namespace.include_path = [folder, *([given] if isinstance(given, str) else given or [])]
    return namespace


def shipped_folder(suite_name: str) -> str:
    """The shipped tasks' folder for ``suite_name``'s data split."""
    from quantbench.lmeval.shipped import task_folder
    from quantbench.runner.context import RunContext
    from quantbench.suite import load_suite

    suite = load_suite(suite_name)
    return str(task_folder(RunContext(suite).splits, dataset_source=suite.dataset.source))


def run(args: argparse.Namespace) -> int:
    try:
        from lm_eval._cli.harness import HarnessCLI
    except ImportError:
        raise QuantbenchError("lm-eval is not installed: pip install 'quantbench[lmeval]'") from None
    import quantbench.lmeval.model  # noqa: F401 - registers the "quantbench" model with lm-eval

    cli = HarnessCLI()
    argv = lm_eval_argv(args.args)
    if not argv:
        cli._parser.print_help()
        return 0
    namespace = cli._parser.parse_args(argv)
    if getattr(namespace, "command", None) == "run":
        namespace = with_defaults(namespace)
    from lm_eval.utils import setup_logging

    setup_logging()
    cli.execute(namespace)
    sys.stdout.flush()
    return 0
